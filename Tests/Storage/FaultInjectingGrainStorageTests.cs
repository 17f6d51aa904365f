using System.Collections.Concurrent;
using Grains.Interfaces;
using Grains.Storage;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Orleans.Runtime;
using Orleans.Storage;
using Tests.Infrastructure;
using WebSocketFrontend.Hosting;

namespace Tests.Storage;

/// <summary>The fault-injecting storage: rules strike the calls they name, as many times as they say, before or after the real call.</summary>
public sealed class FaultInjectingGrainStorageTests
{
    private static readonly GrainId Mailbox = GrainId.Create("clientid", "42");
    private static readonly GrainId Other = GrainId.Create("clientid", "43");

    [Fact]
    public async Task AFailureBeforeTheCallStoresNothingAndStrikesOnlyItsGrainAndOperation()
    {
        var (inner, faults, storage) = Create();
        var rule = faults.Add(new StorageFault { Operation = StorageOperation.Clear, GrainId = Mailbox, StateName = "clientId" });

        await storage.WriteStateAsync("clientId", Mailbox, new GrainState<string>("a"));
        await storage.ClearStateAsync("clientId", Other, new GrainState<string>("b"));
        var failure = await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.ClearStateAsync("clientId", Mailbox, new GrainState<string>("c")));

        Assert.Equal("injected", failure.Code);
        Assert.Equal(1, rule.Hits);
        Assert.True(rule.Struck.IsCompleted);
        Assert.Equal(["Write clientId 42", "Clear clientId 43"], inner.Calls);

        // Once its count is spent the rule strikes no more.
        await storage.ClearStateAsync("clientId", Mailbox, new GrainState<string>("d"));
        Assert.Equal("Clear clientId 42", inner.Calls[^1]);
    }

    [Fact]
    public async Task AFailureAfterTheCallStoresItAndStillFailsTheCaller()
    {
        var (inner, faults, storage) = Create();
        faults.Add(new StorageFault { Operation = StorageOperation.Write, GrainType = "clientid", StateNamePrefix = "queue.", Point = FaultPoint.AfterCall, Times = 2 });

        await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.WriteStateAsync("queue.0", Mailbox, new GrainState<string>("a")));
        await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.WriteStateAsync("queue.1", Other, new GrainState<string>("b")));
        await storage.WriteStateAsync("queue.2", Mailbox, new GrainState<string>("c"));

        Assert.Equal(["Write queue.0 42", "Write queue.1 43", "Write queue.2 42"], inner.Calls);
    }

    [Fact]
    public async Task ARuleCanThrowTheExceptionItIsGivenAndHoldTheCallUntilReleased()
    {
        var (inner, faults, storage) = Create();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        faults.Add(new StorageFault { Operation = StorageOperation.Read, Fail = false, HoldUntil = release.Task });
        faults.Add(new StorageFault { Operation = StorageOperation.Write, Exception = () => new TimeoutException("slow disk") });

        var read = storage.ReadStateAsync("client", Mailbox, new GrainState<string>());
        Assert.False(read.IsCompleted);
        Assert.Empty(inner.Calls);
        release.SetResult();
        await read.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(["Read client 42"], inner.Calls);

        await Assert.ThrowsAsync<TimeoutException>(() => storage.WriteStateAsync("client", Mailbox, new GrainState<string>("a")));
    }

    [Fact]
    public async Task ConfiguredRandomFaultsFollowTheirRatesAndRepeatWithTheSameSeed()
    {
        var options = new StorageFaultOptions { WriteFailureRate = 0.25, WriteDelayRate = 0.25, WriteDelay = TimeSpan.FromSeconds(1), Seed = 7 };
        var first = await OutcomesAsync(options);
        var second = await OutcomesAsync(options);

        Assert.Equal(first, second);
        Assert.InRange(first.Count(o => o == "failed"), 60, 140);
        Assert.InRange(first.Count(o => o == "delayed"), 60, 140);
        Assert.InRange(first.Count(o => o == "stored"), 160, 240);

        static async Task<List<string>> OutcomesAsync(StorageFaultOptions options)
        {
            var time = new FakeTimeProvider();
            var inner = new RecordingStorage();
            var storage = new FaultInjectingGrainStorage(inner, new StorageFaults(options), time);
            var outcomes = new List<string>();
            for (var i = 0; i < 400; i++)
            {
                var write = storage.WriteStateAsync("client", Mailbox, new GrainState<string>("x"));
                var delayed = !write.IsCompleted;
                time.Advance(options.WriteDelay);
                try
                {
                    await write.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
                    outcomes.Add(delayed ? "delayed" : "stored");
                }
                catch (StorageUnavailableException)
                {
                    outcomes.Add("failed");
                }
            }

            // Reads are never struck by configured faults, and a failed write reached nothing.
            await storage.ReadStateAsync("client", Mailbox, new GrainState<string>());
            Assert.Equal(outcomes.Count(o => o != "failed") + 1, inner.Calls.Count);
            return outcomes;
        }
    }

    [Fact]
    public async Task TheGatewayRefusesToStartWithStorageFaultsOutsideDevelopment()
    {
        using var database = new TempDatabase();
        await using var app = GatewayApplication.Create([
            "--urls=http://127.0.0.1:0",
            "--environment=Production",
            $"--Storage:SqlitePath={database.Path}",
            $"--Cluster:SiloPort={FreePort.Next()}",
            $"--Cluster:GatewayPort={FreePort.Next()}",
            "--Logging:LogLevel:Default=None",
            "--Storage:Faults:WriteFailureRate=0.05",
        ]);

        var refused = await Assert.ThrowsAnyAsync<OptionsValidationException>(() => app.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("Storage:Faults", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Development", refused.Message, StringComparison.Ordinal);
    }

    private static (RecordingStorage Inner, StorageFaults Faults, IGrainStorage Storage) Create()
    {
        var inner = new RecordingStorage();
        var faults = new StorageFaults();
        return (inner, faults, new FaultInjectingGrainStorage(inner, faults, TimeProvider.System));
    }

    /// <summary>Records each call that reached it as "Operation state key".</summary>
    private sealed class RecordingStorage : IGrainStorage
    {
        private readonly ConcurrentQueue<string> _calls = new();

        public IReadOnlyList<string> Calls => [.. _calls];

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Record("Read", stateName, grainId);

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Record("Write", stateName, grainId);

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Record("Clear", stateName, grainId);

        private Task Record(string operation, string stateName, GrainId grainId)
        {
            _calls.Enqueue($"{operation} {stateName} {grainId.Key}");
            return Task.CompletedTask;
        }
    }
}
