using System.Collections.Concurrent;

namespace Benchmarks;

/// <summary>A workload: what each simulated client does before the clock starts, and in one timed operation.</summary>
public abstract class Scenario
{
    public abstract string Name { get; }

    /// <summary>The scenarios a command runs, in order.</summary>
    public static IReadOnlyList<Scenario> For(string command) => command switch
    {
        "register" => [new RegisterScenario()],
        "login" => [new LoginScenario()],
        "connect-login" => [new ConnectLoginScenario()],
        _ => throw new ArgumentOutOfRangeException(nameof(command), command, "Unknown command."),
    };

    /// <summary>Untimed setup of one worker, e.g. registering the client it will log in as.</summary>
    public virtual Task PrepareAsync(Worker worker, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>One timed operation; a failure throws.</summary>
    public abstract Task RunOnceAsync(Worker worker, CancellationToken cancellationToken);

    /// <summary>Failures that only show once the run is over, by code.</summary>
    public virtual IReadOnlyDictionary<string, long> Verify() => new Dictionary<string, long>();

    /// <summary>Registers the worker's own client on its socket.</summary>
    protected static async Task RegisterWorkerAsync(Worker worker, CancellationToken cancellationToken)
    {
        var connection = await worker.ConnectionAsync(cancellationToken);
        (worker.Token, worker.ClientId) = await connection.RegisterAsync(worker.NextName(), cancellationToken);
    }
}

/// <summary><c>register</c> in a loop on each open socket; every id handed out must be new.</summary>
public sealed class RegisterScenario : Scenario
{
    private readonly ConcurrentQueue<int> _ids = new();

    public override string Name => "register";

    public override async Task RunOnceAsync(Worker worker, CancellationToken cancellationToken)
    {
        var connection = await worker.ConnectionAsync(cancellationToken);
        var (_, id) = await connection.RegisterAsync(worker.NextName(), cancellationToken);
        _ids.Enqueue(id);
    }

    public override IReadOnlyDictionary<string, long> Verify()
    {
        var ids = _ids.ToArray();
        var duplicates = ids.Length - ids.Distinct().Count();
        return duplicates == 0 ? new Dictionary<string, long>() : new Dictionary<string, long> { ["duplicate_id"] = duplicates };
    }
}

/// <summary><c>login</c> in a loop on each open socket, each with the token of its own client.</summary>
public sealed class LoginScenario : Scenario
{
    public override string Name => "login";

    public override Task PrepareAsync(Worker worker, CancellationToken cancellationToken) => RegisterWorkerAsync(worker, cancellationToken);

    public override async Task RunOnceAsync(Worker worker, CancellationToken cancellationToken)
    {
        var connection = await worker.ConnectionAsync(cancellationToken);
        await worker.CheckLoginAsync(connection, cancellationToken);
    }
}

/// <summary>A whole session per operation: open a socket, log in, close it.</summary>
public sealed class ConnectLoginScenario : Scenario
{
    public override string Name => "connect-login";

    public override async Task PrepareAsync(Worker worker, CancellationToken cancellationToken)
    {
        await RegisterWorkerAsync(worker, cancellationToken);
        await worker.DropConnectionAsync();
    }

    public override async Task RunOnceAsync(Worker worker, CancellationToken cancellationToken)
    {
        await using var connection = await worker.OpenAsync(cancellationToken);
        await worker.CheckLoginAsync(connection, cancellationToken);
        await connection.CloseAsync(cancellationToken);
    }
}
