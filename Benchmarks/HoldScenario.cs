using System.Diagnostics;

namespace Benchmarks;

/// <summary>
/// Memory one idle logged-in session costs the server. The clients are registered first, then the
/// server is restarted on the same data, so the figure counts what a login brings into memory (the
/// session, and for the gateway the grains a login activates) and not what registering left behind.
/// A warm-up of connect-login cycles on clients of their own lets the code paths load before the
/// "before" reading; then <c>--sessions</c> sockets log in and stay open, idle, and the server's
/// resident memory is read again once it has settled. Memory per session = (after − before) / held.
/// With <paramref name="socketIo"/>, the warm-up and the held sessions speak Socket.IO at <c>/socket.io/</c>
/// (registering stays on <c>/ws</c>); each session's receive loop answers the Engine.IO heartbeats.
/// </summary>
public sealed class HoldScenario(BenchmarkOptions options, ServerTarget target, int round, bool socketIo = false) : IBenchmarkRun
{
    /// <summary>Frames a held session may receive: its login reply, the pings' replies and the heartbeats of an hour.</summary>
    private const long MaxFrames = 10_000;

    /// <summary>Clients that warm the login path up before the "before" reading.</summary>
    private const int WarmupClients = 200;

    /// <summary>Connect-login cycles each warm-up client makes.</summary>
    private const int WarmupCycles = 3;

    /// <summary>How often resident memory is read while it settles, and the longest it may take.</summary>
    private static readonly TimeSpan _settleStep = TimeSpan.FromMilliseconds(500);

    private static readonly TimeSpan _settleLimit = TimeSpan.FromSeconds(10);

    /// <summary>How often each session pings while it idles: well within the gateway's default keep-alive timeout of 2 min.</summary>
    private static readonly TimeSpan _keepAliveEvery = TimeSpan.FromSeconds(45);

    private readonly ErrorCounts _errors = new();

    public string Name => "hold";

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var total = options.Sessions + WarmupClients;
        BenchClient?[] clients;
        await using (var registering = await target.StartAsync(cancellationToken))
        {
            Log($"registering {total} clients on {registering.Url}");
            clients = await Phases.RegisterAsync(registering.Url, total, options.Concurrency, "hold", _errors, options.Duration, cancellationToken);
        }

        await using var server = await target.StartAsync(cancellationToken);
        var process = server.Process ?? throw new InvalidOperationException("hold needs a server the tool started.");
        var url = socketIo ? SocketIoFraming.EndpointBeside(server.Url) : server.Url;
        var warmup = clients[options.Sessions..].OfType<BenchClient>().ToArray();
        Log($"warming up: {warmup.Length} clients × {WarmupCycles} connect-login cycles");
        await Phases.ForEachAsync(warmup.Length * WarmupCycles, Math.Min(options.Concurrency, 50), options.Duration, _errors, "warmup", async (i, phase) =>
        {
            try
            {
                await using var connection = await ProtocolConnection.OpenAsync(url, LoadRunner.OperationTimeout, phase);
                await connection.LoginAsync(warmup[i % warmup.Length].Token, phase);
                await connection.CloseAsync(phase);
            }
            catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"warmup:{code}");
            }
        }, cancellationToken);

        var before = await SettledResidentBytesAsync(process, cancellationToken);
        Log($"resident before: {before / 1048576.0:0.0} MiB; opening {options.Sessions} sessions, {options.Concurrency} at a time");

        var held = new PipelinedConnection?[options.Sessions];
        var latencies = new long[options.Sessions];
        var started = Stopwatch.GetTimestamp();
        using var opening = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var keeper = KeepAliveWhileOpeningAsync(held, opening.Token);
        try
        {
            await Phases.ForEachAsync(options.Sessions, options.Concurrency, options.Duration, _errors, "open", async (i, phase) =>
            {
                if (clients[i] is not { } client)
                {
                    return;
                }

                PipelinedConnection? connection = null;
                try
                {
                    var begun = Stopwatch.GetTimestamp();
                    connection = await PipelinedConnection.OpenAsync(url, LoadRunner.OperationTimeout, 1, MaxFrames, null, phase);
                    var (reply, _) = await connection.RequestAsync("login", "logged", client.Token, static (w, t) => w.WriteString("token"u8, t), phase);
                    if (reply.GetProperty("id").GetInt32() != client.Id)
                    {
                        _errors.Add("wrong_id");
                    }

                    latencies[i] = Stopwatch.GetTimestamp() - begun;
                    held[i] = connection;
                    connection = null;
                }
                catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
                {
                    _errors.Add($"open:{code}");
                }
                finally
                {
                    if (connection is not null)
                    {
                        await connection.DisposeAsync();
                    }
                }
            }, cancellationToken);
            var opened = Stopwatch.GetTimestamp();
            await opening.CancelAsync();
            await keeper;
            await IdleAsync(held, cancellationToken);

            var after = await SettledResidentBytesAsync(process, cancellationToken);

            // Every session must still be open and served once the reading is taken.
            var reading = new HoldReading(options, _errors, ServerName, round, $"{Name} {ServerName} #{round}", before, after, started, opened);
            return await HeldSessions.ReadAsync(reading, held, latencies, PingAsync, ErrorCounts.CodeOf, cancellationToken);
        }
        finally
        {
            await HeldSessions.CloseAsync(held, options, _errors, c => c.DisposeAsync().AsTask(), cancellationToken);
        }
    }

    /// <summary>
    /// While the sessions open, which can take longer than the server's keep-alive timeout at 19,000 of them
    /// on a busy machine, pings every session already held each <see cref="_keepAliveEvery"/>, so that the
    /// first ones opened are not closed as silent before the reading.
    /// </summary>
    private async Task KeepAliveWhileOpeningAsync(PipelinedConnection?[] held, CancellationToken opening)
    {
        try
        {
            while (true)
            {
                await Task.Delay(_keepAliveEvery, opening);
                await PingAllAsync(held, opening);
            }
        }
        catch (OperationCanceledException) when (opening.IsCancellationRequested)
        {
            // Every session is open.
        }
    }

    /// <summary>One <c>ping</c> on every session held; one that fails counts as <c>keepalive:&lt;code&gt;</c>.</summary>
    private Task PingAllAsync(PipelinedConnection?[] held, CancellationToken cancellationToken) =>
        Phases.ForEachAsync(held.Length, options.Concurrency, options.Duration, _errors, "keepalive", async (i, phase) =>
        {
            if (held[i] is not { } connection)
            {
                return;
            }

            try
            {
                await PingAsync(connection, phase);
            }
            catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"keepalive:{code}");
            }
        }, cancellationToken);

    /// <summary>
    /// Leaves the sessions idle for <see cref="BenchmarkOptions.Idle"/>, but for a <c>ping</c> on each every
    /// <see cref="_keepAliveEvery"/>, as a device keeps its socket within the server's keep-alive timeout
    /// (2 min by default). A ping is answered by the frontend alone; it calls no grain.
    /// </summary>
    private async Task IdleAsync(PipelinedConnection?[] held, CancellationToken cancellationToken)
    {
        if (options.Idle <= TimeSpan.Zero)
        {
            return;
        }

        Log($"idle for {options.Idle.TotalSeconds} s, a ping on each session every {_keepAliveEvery.TotalSeconds} s");
        var end = Stopwatch.GetTimestamp() + (long)(options.Idle.TotalSeconds * Stopwatch.Frequency);
        for (var left = options.Idle; left > TimeSpan.Zero; left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), end))
        {
            // First at once: the sessions opened last have been silent since their login.
            await PingAllAsync(held, cancellationToken);

            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), end);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait < _keepAliveEvery ? wait : _keepAliveEvery, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Resident memory once it stops moving: read every half second until two readings in a row are
    /// within 1% of each other, at most <see cref="_settleLimit"/>; the last reading is the figure.
    /// </summary>
    private static async Task<long> SettledResidentBytesAsync(ServerProcess process, CancellationToken cancellationToken)
    {
        var last = process.ResidentBytes();
        var deadline = Stopwatch.GetTimestamp() + (long)(_settleLimit.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            await Task.Delay(_settleStep, cancellationToken);
            var now = process.ResidentBytes();
            var steady = Math.Abs(now - last) <= last / 100;
            last = now;
            if (steady)
            {
                break;
            }
        }

        return last;
    }

    /// <summary>An application-level round trip: proves the session is still open and served.</summary>
    private static Task PingAsync(PipelinedConnection connection, CancellationToken cancellationToken) =>
        connection.RequestAsync("ping", "pinged", 0, static (_, _) => { }, cancellationToken);

    private string ServerName => socketIo ? BenchmarkPlan.SocketIoRow : target.Name;

    private void Log(string message) => Phases.Log($"{Name} {ServerName} #{round}", message);
}
