using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Benchmarks;

/// <summary>
/// The cluster a chaos run loads and breaks: <c>Silo</c> and <c>WebSocketFrontend</c> processes from
/// the built binaries, on a PostgreSQL database the run creates for itself (and drops at the end),
/// with ADO.NET clustering and the fast probe settings. Processes die by SIGKILL and start again;
/// their output goes to log files, whose folder is kept when the run fails.
/// </summary>
public sealed class ChaosCluster : IAsyncDisposable
{
    /// <summary>The probe settings the README documents for a cluster that must notice a dead silo in 2 to 4 s.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    public const int NumMissedProbesLimit = 2;

    /// <summary>The detection time the README documents for those settings: a killed silo is declared dead within it.</summary>
    public static readonly TimeSpan DetectionTime = TimeSpan.FromSeconds(4);

    /// <summary>The frontends' <c>Cluster:ResponseTimeout</c>: a request lost with a killed silo is answered after this.</summary>
    public static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(4);

    /// <summary>The admin key of the frontends' <c>/api</c>.</summary>
    public string AdminKey { get; } = Guid.NewGuid().ToString("N");

    private static readonly TimeSpan _startBound = TimeSpan.FromSeconds(90);

    private readonly string _adminConnectionString;
    private readonly string _databaseName = $"gw_chaos_{Guid.NewGuid():N}";
    private readonly string _clusterId = $"chaos-{Guid.NewGuid():N}";
    private readonly bool _storageFaults;
    private readonly bool _chaos;
    private readonly List<ChaosProcess> _processes = [];
    private readonly string _siloDll;
    private readonly string _frontendDll;
    private string? _connectionString;
    private int _seed = 1;

    private ChaosCluster(string adminConnectionString, bool storageFaults, bool chaos)
    {
        _adminConnectionString = adminConnectionString;
        _storageFaults = storageFaults;
        _chaos = chaos;
        _siloDll = BuiltDll("Silo");
        _frontendDll = BuiltDll("WebSocketFrontend");
        LogFolder = Directory.CreateTempSubdirectory("gateway-chaos-").FullName;
    }

    /// <summary>Where every process writes its output.</summary>
    public string LogFolder { get; }

    /// <summary>Keeps the log folder after the run (a failed check wants them read).</summary>
    public bool KeepLogs { get; set; }

    /// <summary>
    /// Creates the database; nothing runs yet. With <paramref name="chaos"/>, the processes run with the short
    /// timeouts that let a chaos run see a killed process go within seconds; without it, with the product's
    /// defaults, as a load run measures them (the load tool's limits lifted either way).
    /// </summary>
    public static async Task<ChaosCluster> CreateAsync(string adminConnectionString, bool storageFaults, CancellationToken cancellationToken, bool chaos = true)
    {
        var cluster = new ChaosCluster(adminConnectionString, storageFaults, chaos);
        await cluster.ExecuteAdminAsync($"CREATE DATABASE {cluster._databaseName}", cancellationToken);

        // What an operator writes: no pool size, so each process's Storage:MaxConnections default bounds it.
        var builder = new NpgsqlConnectionStringBuilder(adminConnectionString) { Database = cluster._databaseName };
        builder.Remove("Maximum Pool Size");
        cluster._connectionString = builder.ConnectionString;
        return cluster;
    }

    /// <summary>Starts a silo on free ports; it is ready once its membership row says Active.</summary>
    public ChaosProcess StartSilo(string name)
    {
        var siloPort = FreePort();
        var settings = Shared();
        settings["Cluster:SiloPort"] = Invariant(siloPort);
        settings["Cluster:GatewayPort"] = Invariant(FreePort());
        if (!_chaos)
        {
            // As the tool starts a single gateway: its senders stand in for back ends.
            settings["ClientStore:MaxQueuedPerSender"] = "1000";
            settings["ClientStore:ReservedForBackEnds"] = "0";
            return Start(name, _siloDll, settings, siloPort, http: null);
        }

        settings["Cluster:ProbeTimeout"] = ProbeTimeout.ToString("c", CultureInfo.InvariantCulture);
        settings["Cluster:NumMissedProbesLimit"] = Invariant(NumMissedProbesLimit);

        // A send waits this long at most for a slow socket before it queues: well inside the response timeout.
        settings["ClientStore:PushTimeout"] = "00:00:02";
        if (_storageFaults)
        {
            // 5% of writes fail, 5% wait half a second; the product accepts this only in Development.
            settings["environment"] = "Development";
            settings["Storage:Faults:WriteFailureRate"] = "0.05";
            settings["Storage:Faults:WriteDelayRate"] = "0.05";
            settings["Storage:Faults:WriteDelay"] = "00:00:00.500";
            settings["Storage:Faults:Seed"] = Invariant(_seed++);
        }

        return Start(name, _siloDll, settings, siloPort, http: null);
    }

    /// <summary>Starts a frontend on a free port; it is ready once <c>/health/ready</c> answers 200.</summary>
    public ChaosProcess StartFrontend(string name)
    {
        var port = FreePort();
        var settings = Shared();
        settings["Urls"] = $"http://127.0.0.1:{Invariant(port)}";
        settings["Api:AdminKey"] = AdminKey;
        if (_chaos)
        {
            settings["Cluster:ResponseTimeout"] = ResponseTimeout.ToString("c", CultureInfo.InvariantCulture);

            // A killed frontend's sessions and directory entries run out within 1.5 s.
            settings["Protocol:SessionRenewInterval"] = "00:00:00.500";
            settings["Protocol:DirectoryLeaseInterval"] = "00:00:00.500";
        }

        // The load tool lifts the per-socket and per-address limits explicitly.
        settings["Protocol:RequestsPerSecond"] = "100000";
        settings["Protocol:RequestBurst"] = "100000";
        settings["Limits:Enabled"] = "false";

        // Clients send to each other in the mixed traffic, which the default (contacts only) refuses.
        settings["Protocol:ClientSend"] = "any";
        return Start(name, _frontendDll, settings, siloPort: null, new Uri($"http://127.0.0.1:{Invariant(port)}"));
    }

    /// <summary>Waits, bounded, until the process serves: a silo Active in the membership table, a frontend ready.</summary>
    public async Task WaitReadyAsync(ChaosProcess process, CancellationToken cancellationToken)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };
        var started = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(started) < _startBound)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{process.Name} exited while starting; see {process.LogPath}.");
            }

            if (process.SiloPort is { } port ? await IsActiveAsync(port, cancellationToken) : await IsReadyAsync(http, process.Http!, cancellationToken))
            {
                return;
            }

            await Task.Delay(200, cancellationToken);
        }

        throw new TimeoutException($"{process.Name} was not ready within {_startBound.TotalSeconds} s; see {process.LogPath}.");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            process.Kill();
            process.Dispose();
        }

        try
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAdminAsync($"DROP DATABASE IF EXISTS {_databaseName} WITH (FORCE)", CancellationToken.None);
        }
        catch (NpgsqlException ex)
        {
            Console.Error.WriteLine($"Could not drop {_databaseName}: {ex.Message}");
        }

        if (!KeepLogs && Directory.Exists(LogFolder))
        {
            Directory.Delete(LogFolder, recursive: true);
        }
    }

    /// <summary>
    /// The dll of <paramref name="project"/> built next to this assembly's project, in the same
    /// configuration: <c>&lt;root&gt;/&lt;project&gt;/bin/&lt;Configuration&gt;/&lt;tfm&gt;/</c>.
    /// </summary>
    private static string BuiltDll(string project)
    {
        var output = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        var configuration = output.Parent;
        var root = configuration?.Parent?.Parent?.Parent;
        if (configuration?.Parent?.Name != "bin" || root is null)
        {
            throw new InvalidOperationException($"{output.FullName} is not <project>/bin/<Configuration>/<tfm>/; cannot find the built {project}.");
        }

        var dll = Path.Combine(root.FullName, project, "bin", configuration.Name, output.Name, project + ".dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} is missing: build the solution first (dotnet build -c {configuration.Name} Orleans.sln).");
    }

    private Dictionary<string, string> Shared() => new()
    {
        ["Storage:Provider"] = "PostgreSql",
        ["Storage:ConnectionString"] = _connectionString ?? throw new InvalidOperationException("No database yet."),
        ["Cluster:Clustering"] = "AdoNet",
        ["Cluster:ServiceId"] = "client-management-chaos",
        ["Cluster:ClusterId"] = _clusterId,
        ["Cluster:AdvertisedAddress"] = "127.0.0.1",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:LogLevel:Orleans.Runtime.MembershipService"] = "Information",
        ["Logging:Console:FormatterName"] = "simple",
        ["Logging:Console:FormatterOptions:SingleLine"] = "true",
        ["Logging:Console:FormatterOptions:TimestampFormat"] = "HH:mm:ss.fff ",
        ["Logging:Console:FormatterOptions:ColorBehavior"] = "Disabled",
    };

    private ChaosProcess Start(string name, string dll, Dictionary<string, string> settings, int? siloPort, Uri? http)
    {
        var process = ChaosProcess.Start(name, dll, settings, Path.Combine(LogFolder, $"{name}-{_processes.Count}.log"), siloPort, http);
        _processes.Add(process);
        return process;
    }

    private async Task<bool> IsActiveAsync(int siloPort, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new NpgsqlConnection(_connectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand(
                "SELECT Status FROM ClusterMember WHERE DeploymentId = @id AND Port = @port ORDER BY Generation DESC LIMIT 1", connection);
            command.Parameters.AddWithValue("id", _clusterId);
            command.Parameters.AddWithValue("port", siloPort);
            return await command.ExecuteScalarAsync(cancellationToken) is int status && status == 3;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            // The first silo has not applied the schema yet.
            return false;
        }
    }

    private static async Task<bool> IsReadyAsync(HttpClient http, Uri frontend, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync(new Uri(frontend, "/health/ready"), cancellationToken);
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task ExecuteAdminAsync(string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_adminConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One process of a chaos run; <see cref="Kill"/> is a SIGKILL, the crash no shutdown code sees.</summary>
public sealed class ChaosProcess : IDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly ConcurrentQueue<string> _tail = new();
    private readonly Lock _gate = new();
    private bool _closed;

    private ChaosProcess(string name, Process process, string logPath, int? siloPort, Uri? http)
    {
        Name = name;
        _process = process;
        LogPath = logPath;
        SiloPort = siloPort;
        Http = http;
        _log = new StreamWriter(logPath) { AutoFlush = true };
    }

    public string Name { get; }

    public string LogPath { get; }

    /// <summary>A silo's port, by which its membership row is found; null for a frontend.</summary>
    public int? SiloPort { get; }

    /// <summary>A frontend's HTTP address; null for a silo.</summary>
    public Uri? Http { get; }

    /// <summary>A frontend's WebSocket endpoint.</summary>
    public Uri WebSocket => new UriBuilder(Http!) { Scheme = "ws", Path = "/ws" }.Uri;

    public bool HasExited => _process.HasExited;

    public static ChaosProcess Start(string name, string dll, IReadOnlyDictionary<string, string> settings, string logPath, int? siloPort, Uri? http)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var (key, value) in settings)
        {
            info.ArgumentList.Add($"--{key}={value}");
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_gcServer"] = "0";
        info.Environment["DOTNET_GCgen0size"] = ServerProcess.GatewayYoungGeneration;
        var process = new Process { StartInfo = info };
        var chaos = new ChaosProcess(name, process, logPath, siloPort, http);
        process.OutputDataReceived += (_, e) => chaos.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => chaos.Keep(e.Data is null ? null : "stderr: " + e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return chaos;
    }

    /// <summary>SIGKILL: no shutdown code runs, the operating system resets its connections.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(15_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started, or already gone.
        }
    }

    /// <summary>The last lines the process wrote.</summary>
    public string Tail(int lines = 20) => $"----- {Name} ({LogPath}) -----\n" + string.Join('\n', _tail.ToArray().TakeLast(lines));

    public void Dispose()
    {
        _process.Dispose();
        lock (_gate)
        {
            _closed = true;
            _log.Dispose();
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            if (!_closed)
            {
                _log.WriteLine(line);
            }
        }

        _tail.Enqueue(line);
        while (_tail.Count > 50 && _tail.TryDequeue(out _))
        {
        }
    }
}
