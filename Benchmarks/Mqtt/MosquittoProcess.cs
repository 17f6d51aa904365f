using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Benchmarks.Mqtt;

/// <summary>
/// Eclipse Mosquitto as the tool's peer: started as a child process with a generated configuration in a
/// folder of its own (deleted when it stops), on two free ports of 127.0.0.1: plain MQTT, and MQTT over
/// WebSocket, which the scenarios use as the gateway's devices use <c>/ws</c>.
/// <list type="bullet">
/// <item>Logins are checked: no anonymous clients, one user in a password file made with
/// <c>mosquitto_passwd</c>, so connect-login pays for a credential check as the gateway's login does.</item>
/// <item>Persistence on, in the same folder, so sessions and their queued messages are kept as a broker
/// with persistent sessions keeps them. Mosquitto writes them out at its autosave interval and at shutdown;
/// unlike the gateway it does not sync each message before acknowledging it.</item>
/// <item>QoS 1 sessions hold enough: up to <see cref="MaxInflight"/> messages in flight to a client and
/// <see cref="MaxQueued"/> queued for it, far above the 50 of drain.</item>
/// </list>
/// </summary>
public sealed class MosquittoProcess : IAsyncDisposable
{
    /// <summary>The user every benchmark client logs in as.</summary>
    public const string User = "bench";

    /// <summary>QoS 1 messages Mosquitto sends a client before it waits for their acknowledgements.</summary>
    public const int MaxInflight = 64;

    /// <summary>QoS 1 messages Mosquitto keeps for a client beyond those in flight (offline or busy).</summary>
    public const int MaxQueued = 2000;

    private static readonly TimeSpan _startTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly string _folder;
    private readonly Task _stdout;
    private readonly Task _stderr;

    private MosquittoProcess(Process process, string folder, Uri url, string password)
    {
        _process = process;
        _folder = folder;
        Url = url;
        Password = password;
        _stdout = Task.Run(() => DrainAsync(process.StandardOutput));
        _stderr = Task.Run(() => DrainAsync(process.StandardError));
    }

    /// <summary>The WebSocket listener, <c>ws://127.0.0.1:PORT/mqtt</c>.</summary>
    public Uri Url { get; }

    /// <summary>The password of <see cref="User"/>, fresh for each start.</summary>
    public string Password { get; }

    public int ProcessId => _process.Id;

    /// <summary>
    /// The mosquitto executable: <paramref name="path"/> when it names a file, else the name looked up on
    /// PATH and in /usr/sbin, where Debian's package puts it; null when it is not installed.
    /// </summary>
    public static string? Find(string path)
    {
        if (path.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(path) ? Path.GetFullPath(path) : null;
        }

        var folders = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/sbin");
        return folders.Select(f => Path.Combine(f, path)).FirstOrDefault(File.Exists);
    }

    /// <summary>What to tell someone whose machine lacks the broker.</summary>
    public static string NotInstalled(string path) =>
        $"Mosquitto ('{path}') is not installed: apt-get install -y mosquitto (Debian's package, which also brings mosquitto_passwd).";

    /// <summary>
    /// Starts <paramref name="executable"/> and waits, bounded, until both listeners accept connections; a broker that
    /// exits while starting (a port taken between its choice and the bind) is started again on fresh ports, as the
    /// servers are.
    /// </summary>
    public static Task<MosquittoProcess> StartAsync(string executable, CancellationToken cancellationToken) =>
        ServerProcess.OnFreshPortsAsync(() => StartOnceAsync(executable, cancellationToken));

    private static async Task<MosquittoProcess> StartOnceAsync(string executable, CancellationToken cancellationToken)
    {
        var folder = Directory.CreateTempSubdirectory("mosquitto-bench-").FullName;
        try
        {
            var password = Convert.ToHexString(Guid.NewGuid().ToByteArray());
            var passwords = Path.Combine(folder, "passwords");
            await MakePasswordFileAsync(executable, passwords, password, cancellationToken);

            var tcpPort = FreePort();
            var wsPort = FreePort();
            var config = Path.Combine(folder, "mosquitto.conf");
            await File.WriteAllTextAsync(config, string.Join('\n',
            [
                // The user running the tool: when that is root, Mosquitto would otherwise switch to a user that cannot read this folder.
                $"user {Environment.UserName}",
                "per_listener_settings false",
                "allow_anonymous false",
                $"password_file {passwords}",
                "persistence true",
                $"persistence_location {folder}/",
                $"max_inflight_messages {MaxInflight}",
                $"max_queued_messages {MaxQueued}",
                "max_queued_bytes 0",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                $"listener {tcpPort} 127.0.0.1",
                $"listener {wsPort} 127.0.0.1",
                "protocol websockets",
                "",
            ]), cancellationToken);

            var info = new ProcessStartInfo(executable, ["-c", config])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {executable}.");
            var mosquitto = new MosquittoProcess(process, folder, new Uri($"ws://127.0.0.1:{wsPort}/mqtt"), password);
            try
            {
                await mosquitto.WaitListeningAsync([tcpPort, wsPort], cancellationToken);
                Phases.Log("mosquitto", $"started, process {process.Id}, {mosquitto.Url}");
                return mosquitto;
            }
            catch
            {
                await mosquitto.DisposeAsync();
                throw;
            }
        }
        catch
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }

            throw;
        }
    }

    /// <summary>Resident memory of the broker now, in bytes.</summary>
    public long ResidentBytes() => ProcessStats.ResidentBytes(_process.Id);

    /// <summary>User plus system CPU the broker has used so far, in seconds.</summary>
    public double CpuSeconds() => ProcessStats.CpuSeconds(_process.Id);

    /// <summary>Stops the broker with SIGTERM (it saves its sessions), then a kill after a bound; removes its folder.</summary>
    public async ValueTask DisposeAsync()
    {
        await ServerProcess.StopAsync(_process, _stdout, _stderr);
        _process.Dispose();
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    /// <summary><c>mosquitto_passwd -b -c</c>, from the folder of <paramref name="executable"/> or PATH.</summary>
    private static async Task MakePasswordFileAsync(string executable, string file, string password, CancellationToken cancellationToken)
    {
        string[] candidates = [Path.Combine(Path.GetDirectoryName(executable)!, "mosquitto_passwd"), "/usr/bin/mosquitto_passwd"];
        var tool = candidates.FirstOrDefault(File.Exists) ?? Find("mosquitto_passwd")
            ?? throw new InvalidOperationException("mosquitto_passwd is not installed (it comes with Debian's mosquitto package).");
        using var process = Process.Start(new ProcessStartInfo(tool, ["-b", "-c", file, User, password])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        }) ?? throw new InvalidOperationException($"Could not start {tool}.");
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(_startTimeout);
        var error = await process.StandardError.ReadToEndAsync(bound.Token);
        await process.WaitForExitAsync(bound.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"mosquitto_passwd failed ({process.ExitCode}): {error.Trim()}");
        }
    }

    /// <summary>Polls, bounded in time, until every port accepts a TCP connection.</summary>
    private async Task WaitListeningAsync(int[] ports, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(_startTimeout.TotalSeconds * Stopwatch.Frequency);
        foreach (var port in ports)
        {
            while (true)
            {
                if (_process.HasExited)
                {
                    throw new ServerExitedException($"mosquitto exited with code {_process.ExitCode} while starting.");
                }

                try
                {
                    using var probe = new TcpClient();
                    await probe.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                    break;
                }
                catch (SocketException) when (Stopwatch.GetTimestamp() < deadline)
                {
                    await Task.Delay(50, cancellationToken);
                }
            }
        }
    }

    private static async Task DrainAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            Console.Error.WriteLine("[mosquitto] " + line);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
