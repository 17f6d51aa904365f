using System.Data;
using System.Globalization;
using System.Net;
using Npgsql;
using Orleans.Runtime;

namespace Tests.Infrastructure;

/// <summary>A standalone <c>Silo</c> process and the port it is known by in the membership table.</summary>
public sealed record SiloHost(HostProcess Process, int SiloPort);

/// <summary>A <c>WebSocketFrontend</c> process (a pure Orleans client) and where it serves.</summary>
public sealed record FrontendHost(HostProcess Process, Uri HttpUri, Uri WebSocketUri);

/// <summary>
/// For a test class that runs the built hosts as processes on PostgreSQL with ADO.NET clustering:
/// a database of its own, one cluster id, the processes started through it (killed at the end,
/// whatever state they are in) and their output for failure messages. When PostgreSQL is not
/// configured nothing is created, and <see cref="Require"/> skips the test (or fails it in CI).
/// </summary>
public sealed class ProcessClusterFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(60);

    private readonly List<HostProcess> _processes = [];
    private readonly string _clusterId = $"cluster-{Guid.NewGuid():N}";
    private readonly string _logFolder = Path.Combine(Path.GetTempPath(), "cm-tests", "process-logs", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..8]);
    private TestDatabaseOnServer? _database;
    private bool _keepLogs;

    public TestDatabaseOnServer Database => _database ?? throw new InvalidOperationException("No database.");

    /// <summary>Called first by every test: skips or fails when PostgreSQL is not configured.</summary>
    public void Require() => DatabaseServer.PostgreSql.Require();

    public async ValueTask InitializeAsync()
    {
        if (DatabaseServer.PostgreSql.IsConfigured)
        {
            _database = await DatabaseServer.PostgreSql.CreateDatabaseAsync();
        }
    }

    /// <summary>Starts a silo on free ports; <paramref name="settings"/> add to or override the shared ones.</summary>
    public SiloHost StartSilo(string name, IReadOnlyDictionary<string, string>? settings = null)
    {
        var siloPort = FreePort.Next();
        var all = SharedSettings();
        all["Cluster:SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture);
        all["Cluster:GatewayPort"] = FreePort.Next().ToString(CultureInfo.InvariantCulture);
        return new SiloHost(Start(name, "Silo", all, settings), siloPort);
    }

    /// <summary>Starts a frontend on a free port with the admin key of <see cref="GatewayServer.AdminKey"/>.</summary>
    public FrontendHost StartFrontend(string name, IReadOnlyDictionary<string, string>? settings = null)
    {
        var http = new Uri($"http://127.0.0.1:{FreePort.Next()}");
        var all = SharedSettings();
        all["Urls"] = http.ToString().TrimEnd('/');
        all["Api:AdminKey"] = GatewayServer.AdminKey;
        var ws = new UriBuilder(http) { Scheme = "ws", Path = "/ws" }.Uri;
        return new FrontendHost(Start(name, "WebSocketFrontend", all, settings), http, ws);
    }

    /// <summary>Waits, bounded, until the silo's row in the membership table says Active.</summary>
    public async Task WaitUntilActiveAsync(SiloHost silo)
    {
        for (var deadline = DateTime.UtcNow + StartBound; DateTime.UtcNow < deadline;)
        {
            silo.Process.AssertRunning();
            if (await SiloStatusAsync(silo) == SiloStatus.Active)
            {
                return;
            }

            await Task.Delay(200, TestContext.Current.CancellationToken);
        }

        Assert.Fail($"{silo.Process.Name} never became active in the membership table.\n{silo.Process.Tail()}");
    }

    /// <summary>The status of the silo's latest incarnation in the membership table (<see cref="SiloStatus.None"/> before it wrote a row).</summary>
    public async Task<SiloStatus> SiloStatusAsync(SiloHost silo)
    {
        try
        {
            var rows = await Database.QueryAsync(
                "SELECT Status FROM ClusterMember WHERE DeploymentId = @id AND Port = @port ORDER BY Generation DESC LIMIT 1",
                ("id", _clusterId, DbType.String), ("port", silo.SiloPort, DbType.Int32));
            return rows.Count == 0 ? SiloStatus.None : (SiloStatus)Convert.ToInt32(rows[0][0], CultureInfo.InvariantCulture);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            // The first silo has not applied the schema yet.
            return SiloStatus.None;
        }
    }

    /// <summary>Waits, bounded, until the frontend is connected to the cluster and a grain read through it works.</summary>
    public static async Task WaitUntilReadyAsync(FrontendHost frontend)
    {
        using var http = new HttpClient { BaseAddress = frontend.HttpUri, Timeout = TimeSpan.FromSeconds(10) };
        for (var deadline = DateTime.UtcNow + StartBound; DateTime.UtcNow < deadline;)
        {
            frontend.Process.AssertRunning();
            try
            {
                using var ready = await http.GetAsync(new Uri("/health/ready", UriKind.Relative), TestContext.Current.CancellationToken);
                if (ready.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Kestrel is not listening yet.
            }

            await Task.Delay(200, TestContext.Current.CancellationToken);
        }

        Assert.Fail($"{frontend.Process.Name} never became ready.\n{frontend.Process.Tail()}");
    }

    /// <summary>The last output of every process started, for a failure message; their whole logs are then kept.</summary>
    public string Tails(int lines = 80)
    {
        _keepLogs = true;
        return string.Join("\n\n", _processes.Select(p => p.Tail(lines)));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            await process.DisposeAsync();
        }

        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        if (!_keepLogs && Directory.Exists(_logFolder))
        {
            Directory.Delete(_logFolder, recursive: true);
        }
    }

    private HostProcess Start(string name, string project, Dictionary<string, string> shared, IReadOnlyDictionary<string, string>? settings)
    {
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            shared[key] = value;
        }

        Directory.CreateDirectory(_logFolder);
        var process = HostProcess.Start(name, project, shared, _logFolder);
        _processes.Add(process);
        return process;
    }

    private Dictionary<string, string> SharedSettings()
    {
        var settings = Database.Settings(_clusterId);

        // Four processes share the server's connections with the rest of the suite.
        settings["Storage:ConnectionString"] = new NpgsqlConnectionStringBuilder(Database.ConnectionString) { MaxPoolSize = 10 }.ConnectionString;
        settings["Cluster:AdvertisedAddress"] = "127.0.0.1";
        settings["Logging:LogLevel:Default"] = "Information";
        settings["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning";
        settings["Logging:LogLevel:Orleans"] = "Warning";
        settings["Logging:LogLevel:Orleans.Runtime.MembershipService"] = "Information";
        settings["Logging:Console:FormatterName"] = "simple";
        settings["Logging:Console:FormatterOptions:SingleLine"] = "true";
        settings["Logging:Console:FormatterOptions:TimestampFormat"] = "HH:mm:ss.fff ";
        settings["Logging:Console:FormatterOptions:ColorBehavior"] = "Disabled";
        return settings;
    }
}
