using System.ComponentModel.DataAnnotations;
using Grains.Interfaces;
using Orleans.Storage;

namespace Grains.Storage;

/// <summary>The grain-storage calls a fault can target.</summary>
public enum StorageOperation
{
    /// <summary><c>ReadStateAsync</c>.</summary>
    Read,

    /// <summary><c>WriteStateAsync</c>.</summary>
    Write,

    /// <summary><c>ClearStateAsync</c>.</summary>
    Clear,
}

/// <summary>When an injected failure strikes, relative to the real call.</summary>
public enum FaultPoint
{
    /// <summary>Before the call: nothing reaches the database.</summary>
    BeforeCall,

    /// <summary>After the call succeeded: it is stored, yet the caller hears an error (the ambiguous case).</summary>
    AfterCall,
}

/// <summary>One rule of <see cref="StorageFaults"/>: which calls it matches, how many of them, and what it does to them.</summary>
public sealed record StorageFault
{
    /// <summary>The call it targets.</summary>
    public required StorageOperation Operation { get; init; }

    /// <summary>Only calls for this grain, when set.</summary>
    public GrainId? GrainId { get; init; }

    /// <summary>Only calls for grains of this type (e.g. <c>clientid</c>), when set.</summary>
    public string? GrainType { get; init; }

    /// <summary>Only calls for this state name (<c>clientId</c>, <c>client</c>), when set.</summary>
    public string? StateName { get; init; }

    /// <summary>Only calls for state names starting with this (<c>queue.</c> for every queue segment), when set.</summary>
    public string? StateNamePrefix { get; init; }

    /// <summary>How many matching calls it strikes before it retires (default 1).</summary>
    public int Times { get; init; } = 1;

    /// <summary>False for a rule that only delays or holds the call.</summary>
    public bool Fail { get; init; } = true;

    /// <summary>Whether the failure comes before or after the real call (default before: nothing stored).</summary>
    public FaultPoint Point { get; init; } = FaultPoint.BeforeCall;

    /// <summary>A delay before the call, on the silo's clock.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>The call waits for this task before going on, so that a test can hold it at a chosen moment.</summary>
    public Task? HoldUntil { get; init; }

    /// <summary>What the failure throws; a <see cref="StorageUnavailableException"/> when not set.</summary>
    public Func<Exception>? Exception { get; init; }

    internal bool Matches(StorageOperation operation, string stateName, GrainId grainId) =>
        operation == Operation
        && (GrainId is not { } id || id.Equals(grainId))
        && (GrainType is null || grainId.Type.ToString() == GrainType)
        && (StateName is null || StateName == stateName)
        && (StateNamePrefix is null || stateName.StartsWith(StateNamePrefix, StringComparison.Ordinal));
}

/// <summary>A rule once added: how often it struck, and a task that completes when it first does.</summary>
public sealed class StorageFaultRule(StorageFault fault)
{
    private readonly TaskCompletionSource _struck = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _hits;

    /// <summary>The rule as given.</summary>
    public StorageFault Fault { get; } = fault;

    /// <summary>How many calls it has struck.</summary>
    public int Hits => Volatile.Read(ref _hits);

    /// <summary>Completes when the rule first strikes a call.</summary>
    public Task Struck => _struck.Task;

    /// <summary>True when the rule is still live and now counts this call.</summary>
    internal bool TryTake()
    {
        while (true)
        {
            var hits = Volatile.Read(ref _hits);
            if (hits >= Fault.Times)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _hits, hits + 1, hits) == hits)
            {
                _struck.TrySetResult();
                return true;
            }
        }
    }
}

/// <summary>
/// The faults a <see cref="FaultInjectingGrainStorage"/> injects: rules that tests add ("fail the next
/// clear of this mailbox's header"), and the random faults of the <c>Storage:Faults</c> settings.
/// </summary>
public sealed class StorageFaults
{
    private readonly Lock _gate = new();
    private readonly Random? _random;
    private readonly StorageFaultOptions _options;
    private StorageFaultRule[] _rules = [];

    /// <summary>Rules only, for tests.</summary>
    public StorageFaults()
        : this(new StorageFaultOptions())
    {
    }

    /// <summary>Rules, plus the random faults of <paramref name="options"/> when it enables any.</summary>
    public StorageFaults(StorageFaultOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        if (options.Enabled)
        {
            _random = options.Seed is { } seed ? new Random(seed) : new Random();
        }
    }

    /// <summary>Adds a rule; it strikes the next <see cref="StorageFault.Times"/> matching calls.</summary>
    public StorageFaultRule Add(StorageFault fault)
    {
        ArgumentNullException.ThrowIfNull(fault);
        var rule = new StorageFaultRule(fault);
        lock (_gate)
        {
            _rules = [.. _rules, rule];
        }

        return rule;
    }

    /// <summary>Retires every rule.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _rules = [];
        }
    }

    /// <summary>The rule, or random fault, that strikes this call; null for most calls.</summary>
    internal StorageFault? Next(StorageOperation operation, string stateName, GrainId grainId)
    {
        foreach (var rule in Volatile.Read(ref _rules))
        {
            if (rule.Fault.Matches(operation, stateName, grainId) && rule.TryTake())
            {
                return rule.Fault;
            }
        }

        if (_random is null || operation == StorageOperation.Read)
        {
            return null;
        }

        double draw;
        lock (_gate)
        {
            draw = _random.NextDouble();
        }

        // One draw per write: the first WriteFailureRate of [0, 1) fails it, the next WriteDelayRate delays it.
        if (draw < _options.WriteFailureRate)
        {
            return new StorageFault { Operation = operation, Point = _options.FailAfterWrite ? FaultPoint.AfterCall : FaultPoint.BeforeCall };
        }

        return draw < _options.WriteFailureRate + _options.WriteDelayRate
            ? new StorageFault { Operation = operation, Fail = false, Delay = _options.WriteDelay }
            : null;
    }
}

/// <summary>
/// Storage faults injected at random, section <c>Storage:Faults</c>, for chaos runs. Development only:
/// the silo refuses to start with any of them set in another environment.
/// </summary>
public sealed class StorageFaultOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Storage:Faults";

    /// <summary>Share of writes and clears that fail (0 to 1, default 0: none).</summary>
    [Range(0.0, 1.0)]
    public double WriteFailureRate { get; set; }

    /// <summary>Share of writes and clears delayed by <see cref="WriteDelay"/> (0 to 1, default 0: none).</summary>
    [Range(0.0, 1.0)]
    public double WriteDelayRate { get; set; }

    /// <summary>How long a delayed write waits before it goes on (default 500 ms).</summary>
    public TimeSpan WriteDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>True to fail writes after they are stored (the caller hears an error for a stored write); default false: before.</summary>
    public bool FailAfterWrite { get; set; }

    /// <summary>Seed of the draws, for a run that can be repeated; a random seed when not set.</summary>
    public int? Seed { get; set; }

    /// <summary>True when any fault is configured.</summary>
    public bool Enabled => WriteFailureRate > 0 || WriteDelayRate > 0;
}

/// <summary>
/// Grain storage that fails, delays or holds chosen calls before handing them to the real storage:
/// the means by which tests and chaos runs prove the grains correct under storage faults. Injected
/// failures throw <see cref="StorageUnavailableException"/> unless the rule says otherwise, as a
/// real failure does once mapped.
/// </summary>
internal sealed class FaultInjectingGrainStorage(IGrainStorage inner, StorageFaults faults, TimeProvider time) : IGrainStorage
{
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        faults.Next(StorageOperation.Read, stateName, grainId) is { } fault
            ? StrikeAsync(fault, stateName, grainId, () => inner.ReadStateAsync(stateName, grainId, grainState))
            : inner.ReadStateAsync(stateName, grainId, grainState);

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        faults.Next(StorageOperation.Write, stateName, grainId) is { } fault
            ? StrikeAsync(fault, stateName, grainId, () => inner.WriteStateAsync(stateName, grainId, grainState))
            : inner.WriteStateAsync(stateName, grainId, grainState);

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        faults.Next(StorageOperation.Clear, stateName, grainId) is { } fault
            ? StrikeAsync(fault, stateName, grainId, () => inner.ClearStateAsync(stateName, grainId, grainState))
            : inner.ClearStateAsync(stateName, grainId, grainState);

    private async Task StrikeAsync(StorageFault fault, string stateName, GrainId grainId, Func<Task> call)
    {
        if (fault.HoldUntil is { } hold)
        {
            await hold;
        }

        if (fault.Delay > TimeSpan.Zero)
        {
            await Task.Delay(fault.Delay, time);
        }

        if (fault.Fail && fault.Point == FaultPoint.BeforeCall)
        {
            throw Failure(fault, stateName, grainId);
        }

        await call();
        if (fault.Fail)
        {
            throw Failure(fault, stateName, grainId);
        }
    }

    private static Exception Failure(StorageFault fault, string stateName, GrainId grainId) =>
        fault.Exception?.Invoke()
        ?? new StorageUnavailableException("injected", $"Injected fault: {fault.Operation} of {stateName} for {grainId} failed {(fault.Point == FaultPoint.BeforeCall ? "before" : "after")} the call.");
}
