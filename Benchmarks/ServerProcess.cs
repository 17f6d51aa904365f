using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Benchmarks;

/// <summary>
/// A server the tool starts as a child process on 127.0.0.1 and stops when done: the gateway from its
/// built binaries, or the ceiling from this assembly. Owning the process is what lets the tool read its
/// memory and the bytes it writes from /proc.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private static readonly TimeSpan _startTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Starts of one server, each on fresh ports, before a server that exits while starting fails the run.</summary>
    private const int StartAttempts = 3;

    /// <summary>The young-generation budget the gateway's launch profile and images set (<c>DOTNET_GCgen0size</c>, 32 MiB).</summary>
    internal const string GatewayYoungGeneration = "0x2000000";

    private static readonly TimeSpan _stopTimeout = TimeSpan.FromSeconds(15);

    private readonly Process _process;
    private readonly Task _stdout;
    private readonly Task _stderr;

    private ServerProcess(string name, Process process, Uri url)
    {
        Name = name;
        _process = process;
        Url = url;

        // The children's output is drained (a full pipe would stall them) and shown, marked; the gateway logs warnings only.
        _stdout = Task.Run(() => Drain(process.StandardOutput, $"[{name}] "));
        _stderr = Task.Run(() => Drain(process.StandardError, $"[{name}] "));
    }

    /// <summary><c>gateway</c> or <c>ceiling</c>.</summary>
    public string Name { get; }

    /// <summary>The WebSocket endpoint.</summary>
    public Uri Url { get; }

    public int ProcessId => _process.Id;

    /// <summary>
    /// Starts the gateway from <paramref name="gatewayDll"/> on the embedded SQLite default, with its data in
    /// <paramref name="dataDirectory"/>, the per-socket request limits lifted (the tool's senders
    /// pipeline thousands of requests per second on a few sockets) and the per-address budgets off
    /// (every simulated device connects and registers from 127.0.0.1).
    /// </summary>
    public static Task<ServerProcess> StartGatewayAsync(string gatewayDll, string dataDirectory, CancellationToken cancellationToken) =>
        OnFreshPortsAsync(() => StartGatewayOnceAsync(gatewayDll, dataDirectory, cancellationToken));

    /// <summary>Starts the ceiling server (<see cref="Ceiling.CeilingServer"/>) from this assembly.</summary>
    public static Task<ServerProcess> StartCeilingAsync(CancellationToken cancellationToken) =>
        OnFreshPortsAsync(() =>
        {
            var port = FreePort();
            var self = typeof(ServerProcess).Assembly.Location;
            return StartAsync("ceiling", [self, "ceiling", "--port", Invariant(port)], port, "/health", cancellationToken);
        });

    /// <summary>
    /// A port found free is only free until the server binds it: another process (a second suite on the machine, or
    /// the outgoing sockets of a load run, which take ports from the same range) can take it first, and the server
    /// then exits while starting. It is started again on fresh ports, at most <see cref="StartAttempts"/> times in
    /// all, so that a server that cannot start at all still fails the run.
    /// </summary>
    internal static async Task<T> OnFreshPortsAsync<T>(Func<Task<T>> start)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await start();
            }
            catch (ServerExitedException) when (attempt < StartAttempts)
            {
                // Fresh ports on the next attempt.
            }
        }
    }

    private static Task<ServerProcess> StartGatewayOnceAsync(string gatewayDll, string dataDirectory, CancellationToken cancellationToken)
    {
        var port = FreePort();
        var root = Path.GetDirectoryName(Path.GetFullPath(gatewayDll))!;
        string[] arguments =
        [
            Path.GetFullPath(gatewayDll),
            "--urls", $"http://127.0.0.1:{port}",
            "--contentRoot", root,
            "--Storage:Provider", "Sqlite",
            "--Storage:SqlitePath", Path.Combine(Path.GetFullPath(dataDirectory), "clients.db"),
            "--Cluster:Clustering", "Localhost",
            "--Cluster:SiloPort", Invariant(FreePort()),
            "--Cluster:GatewayPort", Invariant(FreePort()),
            "--Protocol:RequestsPerSecond", "100000",
            "--Protocol:RequestBurst", "100000",
            "--Limits:Enabled", "false",

            // The tool's client senders stand in for back ends: any client may send, and one sender may fill a whole queue.
            "--Protocol:ClientSend", "any",
            "--ClientStore:MaxQueuedPerSender", "1000",
            "--ClientStore:ReservedForBackEnds", "0",
            "--Logging:LogLevel:Default", "Warning",
        ];
        return StartAsync("gateway", arguments, port, "/health/ready", cancellationToken);
    }


    /// <summary>Resident memory of the process now, in bytes (VmRSS in /proc/PID/status).</summary>
    public long ResidentBytes() => ProcessStats.ResidentBytes(_process.Id);

    /// <summary>User plus system CPU the process has used so far, in seconds.</summary>
    public double CpuSeconds() => ProcessStats.CpuSeconds(_process.Id);

    /// <summary>
    /// Bytes the process has caused to be written to storage so far (write_bytes in /proc/PID/io, counted
    /// when a page is dirtied), or null where the kernel does not account them.
    /// </summary>
    public long? StorageBytesWritten()
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_process.Id}/io"))
            {
                if (line.StartsWith("write_bytes:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(12).Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // No task I/O accounting here.
        }

        return null;
    }

    /// <summary>Stops the process: SIGTERM for a graceful shutdown, then a kill after a bound.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(_process, _stdout, _stderr);
        _process.Dispose();
    }

    /// <summary>
    /// SIGTERM, a wait of at most 15 s for the exit, a kill of the process tree after that, and then the
    /// readers of its output drained: how the tool stops every child server it started.
    /// </summary>
    internal static async Task StopAsync(Process process, Task stdout, Task stderr)
    {
        if (!process.HasExited)
        {
            Signal(process.Id, "TERM");
            using var stop = new CancellationTokenSource(_stopTimeout);
            try
            {
                await process.WaitForExitAsync(stop.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }

        await Task.WhenAll(stdout, stderr).WaitAsync(_stopTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static async Task<ServerProcess> StartAsync(string name, string[] arguments, int port, string readyPath, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // Both servers run the runtime the same way: workstation GC with a 32 MiB young generation, as the
        // gateway ships (its launch profile and images), so memory compares; and no spinning of
        // idle thread-pool threads, which on two shared cores burns what another process (the tool, the other
        // server) needs.
        info.Environment["DOTNET_gcServer"] = "0";
        info.Environment["DOTNET_gcConcurrent"] = "1";
        info.Environment["DOTNET_GCgen0size"] = GatewayYoungGeneration;
        info.Environment["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0";

        // XENV="NAME=value;NAME=value" passes extra variables to the servers the tool starts (a setting such as
        // ClientStore__ClientGrainIdleAge, or a runtime knob), for a run that compares them.
        foreach (var entry in (Environment.GetEnvironmentVariable("XENV") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new ArgumentException($"XENV entries are NAME=value, separated by ';': '{entry}' is not.");
            }

            info.Environment[entry[..equals]] = entry[(equals + 1)..];
        }

        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";

        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {name}.");
        var server = new ServerProcess(name, process, new Uri($"ws://127.0.0.1:{port}/ws"));
        try
        {
            await server.WaitReadyAsync(new Uri($"http://127.0.0.1:{port}{readyPath}"), cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Polls the readiness endpoint (bounded in time) until it answers 200.</summary>
    private async Task WaitReadyAsync(Uri ready, CancellationToken cancellationToken)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.GetTimestamp() + (long)(_startTimeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (_process.HasExited)
            {
                throw new ServerExitedException($"{Name} exited with code {_process.ExitCode} while starting.");
            }

            try
            {
                using var response = await http.GetAsync(ready, cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Not listening yet.
            }

            await Task.Delay(100, cancellationToken);
        }

        throw new TimeoutException($"{Name} was not ready within {_startTimeout.TotalSeconds} s.");
    }

    private static async Task Drain(StreamReader reader, string prefix)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            Console.Error.WriteLine(prefix + line);
        }
    }

    /// <summary>A port free on 127.0.0.1 right now, from the kernel.</summary>
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Sends a signal with kill(1): .NET itself can only send SIGKILL.</summary>
    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, Invariant(pid)]) { UseShellExecute = false });
        kill?.WaitForExit(5000);
    }
}

/// <summary>A server the tool started exited before it was ready.</summary>
public sealed class ServerExitedException(string message) : InvalidOperationException(message);
