using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Benchmarks;

/// <summary>The command line: which scenarios, against which server, how many sockets, for how long.</summary>
/// <param name="Command"><c>register</c>, <c>login</c>, <c>connect-login</c>, <c>drain</c>, <c>online-delivery</c>, <c>hold</c>, <c>queue-depth</c>, <c>chaos</c>, <c>all</c>, or <c>ceiling</c> (serve the ceiling).</param>
/// <param name="Url">The server's WebSocket endpoint; always a loopback address.</param>
/// <param name="Clients">Concurrent sockets (default 200); for drain and online-delivery, the recipients (default 2,000).</param>
/// <param name="Duration">The measured window (default 10 s); for drain and online-delivery, the time limit of each phase (default 300 s).</param>
/// <param name="Warmup">Load before the measured window, not counted (default 2 s; connect-login 20 s, for the JIT of both servers to reach its steady state).</param>
/// <param name="Count">At most this many operations are measured, and at most this many run in the warm-up.</param>
/// <param name="Pending">drain: responses queued for each recipient while it is offline (default 50).</param>
/// <param name="Concurrency">drain and online-delivery: sockets registering, connecting or logging in at once (default 200).</param>
/// <param name="Senders">Sender sockets that queue or push the responses (default 4).</param>
/// <param name="Responses">online-delivery: responses measured, to random recipients (default 20,000).</param>
/// <param name="Window">Requests one sender socket has outstanding at most (default 64; online-delivery 4, since the server answers a socket's requests one at a time and a deeper window only adds queueing to the latency).</param>
/// <param name="Server">The gateway's built WebSocketFrontend.dll: the tool starts it (fresh data for each scenario) instead of using <paramref name="Url"/>.</param>
/// <param name="Sessions">hold: logged-in sessions held open at once (default 10,000).</param>
/// <param name="Rounds">connect-login and hold: gateway/ceiling pairs, run alternately (default 2).</param>
/// <param name="Port">ceiling: the port to serve on 127.0.0.1.</param>
/// <param name="WarmupResponses">online-delivery: responses sent before the measured ones, checked but not timed (default 150,000).</param>
/// <param name="Arguments">The command line, so that <c>all</c> can give each scenario its own defaults.</param>
public sealed record BenchmarkOptions(
    string Command, Uri Url, int Clients, TimeSpan Duration, TimeSpan Warmup, long Count,
    int Pending, int Concurrency, int Senders, int Responses, int Window,
    string? Server, int Sessions, int Rounds, int Port, int WarmupResponses, IReadOnlyList<string> Arguments)
{
    public const string Usage = """
        usage: dotnet run -c Release --project Benchmarks -- <command> [options]
          register         sockets registering new clients in a loop
          login            logins on open sockets (login), then connect-login
          connect-login    open + login + close in a loop, against the gateway and the ceiling in turn
          drain            recipients get --pending responses each while offline, then all log in at once
                           (--concurrency at a time): logins/s, responses/s, each response exactly once, in order
          online-delivery  --clients recipients stay logged in; --senders sockets push --responses responses
                           to random recipients: delivered/s, end-to-end latency, none lost or duplicated
          hold             --sessions logged-in idle sockets: server memory per session (RSS before and after),
                           against the gateway and the ceiling in turn; needs --server
          queue-depth      cost of one enqueue (time, bytes written) for offline recipients whose queues hold
                           9, 99 and 999 responses, measured interleaved; bytes need --server
          all              every scenario above, each with its own defaults
          chaos            2 silos and 2 frontends as processes on PostgreSQL (a database of its own); mixed traffic
                           through both for --seconds (60) while a silo and then a frontend die by SIGKILL and start
                           again, and 5% of storage writes fail and 5% stall; then every client logs in and the run
                           checks: nothing lost or repeated, seqs and ids never repeated, no request stalled past
                           --stall-bound; needs --postgres and the solution built
          ceiling          serve the ceiling (a bare Kestrel WebSocket server, no Orleans, no storage) on --port
        options:
          --server       (none)                   WebSocketFrontend.dll to start on 127.0.0.1 for each scenario (SQLite, fresh data)
          --url          ws://127.0.0.1:5000/ws   the server; must be a loopback address
          --clients      200 (2000)               concurrent sockets (recipients for drain, online-delivery)
          --seconds      10 (300)                 measured duration (time limit of each phase for drain, online-delivery)
          --warmup       2 (20)                   seconds of load before measuring (register, login; connect-login 20)
          --count        (none)                   cap on measured operations (register, login)
          --pending      50                       drain: responses queued per offline recipient (at most 1000, the server's bound)
          --concurrency  200                      drain, online-delivery: sockets registering or logging in at once
          --senders      4                        drain, online-delivery: sender sockets
          --responses    20000                    online-delivery: responses measured
          --warmup-responses 150000               online-delivery: responses sent first, checked, not timed
          --window       64 (4)                   drain, online-delivery: outstanding sends per sender socket
          --senders-log-in yes                    online-delivery: each sender socket logs in with its token first, as an
                                                  MQTT publisher authenticates in its CONNECT (no: each send is checked
                                                  by its token alone, one more grain call per send)
          --sessions     10000                    hold: sessions held at once
          --rounds       2                        connect-login, hold: gateway/ceiling pairs, alternating
          --port         (none)                   ceiling: port on 127.0.0.1
          --postgres     GATEWAY_TEST_POSTGRES    chaos: PostgreSQL connection string on this machine (a login that may create databases)
          --stall-bound  6                        chaos: seconds any request may wait for its answer
          --idle         0                        hold: seconds the sessions stay idle before the memory is read (idle grains
                                                  are collected after ClientStore:ClientGrainIdleAge plus up to a minute)
          --mosquitto    (none)                   mosquitto executable (a path, or a name on PATH or in /usr/sbin): connect-login,
                                                  drain, online-delivery and hold also run on a Mosquitto the tool starts, and
                                                  print gateway/Mosquitto beside gateway/ceiling
          --transport    ws                       connect-login, online-delivery, hold: ws (raw /ws), socketio (Socket.IO,
                                                  Engine.IO v4 WebSocket at /socket.io/ on the same server) or both, which
                                                  runs each on the gateway in the same run and prints Socket.IO / raw
          --cluster      0                        register, login, connect-login, drain, online-delivery: run on N silos and N
                                                  frontends the tool starts as processes (from the built solution, the
                                                  product's defaults, the tool's limits lifted) on a PostgreSQL database of
                                                  their own (--postgres); the clients use frontend 1
        The server answers one request at a time per socket and allows 1000 requests/s (burst 2000) per
        socket by default: start it with --Protocol:RequestsPerSecond=100000 --Protocol:RequestBurst=100000
        for drain and online-delivery, or use more --senders.
        """;

    /// <summary>The cap when <c>--count</c> is not given: far above what a socket can do, so the clock decides.</summary>
    private const long UnboundedCount = 1_000_000_000;

    /// <summary>What <c>all</c> runs, in order.</summary>
    public static readonly string[] Scenarios = ["register", "login", "connect-login", "drain", "online-delivery", "hold", "queue-depth"];

    private static readonly string[] _commands = [.. Scenarios, "chaos", "all", "ceiling"];

    private static readonly string[] _options =
    [
        "--url", "--clients", "--seconds", "--warmup", "--count", "--pending", "--concurrency", "--senders", "--responses",
        "--window", "--server", "--sessions", "--rounds", "--port", "--warmup-responses", "--postgres", "--stall-bound",
        "--mosquitto", "--idle", "--transport", "--cluster", "--senders-log-in",
    ];

    private static readonly string[] _transports = ["ws", "socketio", "both"];

    /// <summary>chaos and --cluster: an administrative PostgreSQL connection string (a login that may create databases), on this machine.</summary>
    public string? Postgres { get; init; }

    /// <summary>chaos: the longest any request may wait for its answer (default 6 s: the 4 s detection time of the probe settings plus 2 s).</summary>
    public TimeSpan StallBound { get; init; } = TimeSpan.FromSeconds(6);

    /// <summary>hold: how long the sessions stay idle before the memory with them open is read (default 0).</summary>
    public TimeSpan Idle { get; init; }

    /// <summary>The mosquitto executable, when connect-login, drain, online-delivery and hold run on Mosquitto as well (default: they do not).</summary>
    public string? Mosquitto { get; init; }

    /// <summary>Silos and frontends of the PostgreSQL cluster the scenario runs on, each (default 0: no cluster).</summary>
    public int Cluster { get; init; }

    /// <summary>connect-login, online-delivery and hold: <c>ws</c> (default), <c>socketio</c> or <c>both</c>.</summary>
    public string Transport { get; init; } = "ws";

    /// <summary>
    /// online-delivery: each sender socket logs in with its token before it sends (default), as an MQTT publisher
    /// authenticates once in its CONNECT; without, every <c>send</c> is checked by its token alone.
    /// </summary>
    public bool SendersLogIn { get; init; } = true;

    /// <summary>The gateway's sessions run over raw <c>/ws</c>.</summary>
    public bool OverWs => Transport is "ws" or "both";

    /// <summary>The gateway's sessions run over Socket.IO.</summary>
    public bool OverSocketIo => Transport is "socketio" or "both";

    public static bool TryParse(string[] args, [NotNullWhen(true)] out BenchmarkOptions? options, [NotNullWhen(false)] out string? problem)
    {
        options = null;
        string? postgres = null;
        if (args.Length == 0 || !_commands.Contains(args[0]))
        {
            problem = args.Length == 0 ? "Missing command." : $"Unknown command '{args[0]}'.";
            return false;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 1; i < args.Length; i += 2)
        {
            if (!_options.Contains(args[i]) || i + 1 == args.Length)
            {
                problem = $"Unknown option or missing value: '{args[i]}'.";
                return false;
            }

            values[args[i]] = args[i + 1];
        }

        // The delivery scenarios run in phases rather than for a window: their defaults are the targets.
        var phased = args[0] is "drain" or "online-delivery" or "hold" or "queue-depth";
        var defaultClients = args[0] switch
        {
            "drain" or "online-delivery" => 2000,
            "queue-depth" => 50,
            "chaos" => 100,
            _ => 200,
        };
        string?[] problems =
        [
            CheckUrl(values.GetValueOrDefault("--url", "ws://127.0.0.1:5000/ws"), out var url),
            CheckServer(values.GetValueOrDefault("--server"), out var server),
            args[0] == "ceiling" && !values.ContainsKey("--port") ? "ceiling needs --port." : null,
            args[0] == "hold" && server is null ? "hold reads the server's memory from /proc: it needs --server, the gateway's WebSocketFrontend.dll." : null,
            Whole(values, "--clients", defaultClients, 1, 19_500, out var clients),
            Seconds(values, "--seconds", phased ? 300 : args[0] == "chaos" ? 60 : 10, 0.1, 3600, out var seconds),
            Seconds(values, "--stall-bound", 6, 0.1, 600, out var stallBound),
            Seconds(values, "--idle", 0, 0, 3600, out var idle),
            CheckMosquitto(values.GetValueOrDefault("--mosquitto"), out var mosquitto),
            Whole(values, "--cluster", 0, 0, 4, out var cluster),
            cluster > 0 && args[0] is not ("register" or "login" or "connect-login" or "drain" or "online-delivery")
                ? "--cluster runs register, login, connect-login, drain or online-delivery: the others need the server's process." : null,
            cluster > 0 && values.ContainsKey("--server") ? "--cluster starts the servers itself: leave --server out." : null,
            args[0] == "chaos" || cluster > 0 ? CheckPostgres(values.GetValueOrDefault("--postgres") ?? Environment.GetEnvironmentVariable("GATEWAY_TEST_POSTGRES"), out postgres) : null,
            Seconds(values, "--warmup", args[0] == "connect-login" ? 20 : 2, 0, 600, out var warmup),
            Whole(values, "--count", UnboundedCount, 1, UnboundedCount, out var count),
            Whole(values, "--pending", 50, 1, 1000, out var pending),
            Whole(values, "--concurrency", 200, 1, 10_000, out var concurrency),
            Whole(values, "--senders", 4, 1, 1000, out var senders),
            Whole(values, "--responses", 20_000, 1, 10_000_000, out var responses),
            Whole(values, "--window", args[0] == "online-delivery" ? 4 : 64, 1, 10_000, out var window),
            Whole(values, "--sessions", 10_000, 1, 100_000, out var sessions),
            Whole(values, "--rounds", 2, 1, 10, out var rounds),
            Whole(values, "--port", 0, 1, 65_535, out var port),
            Whole(values, "--warmup-responses", 150_000, 0, 10_000_000, out var warmupResponses),
            values.TryGetValue("--transport", out var transport) && !_transports.Contains(transport)
                ? $"--transport must be ws, socketio or both, not '{transport}'."
                : null,
            values.TryGetValue("--senders-log-in", out var sendersLogIn) && sendersLogIn is not ("yes" or "no")
                ? $"--senders-log-in must be yes or no, not '{sendersLogIn}'."
                : null,
        ];
        problem = problems.FirstOrDefault(p => p is not null);
        if (problem is not null)
        {
            return false;
        }

        options = new BenchmarkOptions(
            args[0], url!, (int)clients, TimeSpan.FromSeconds(seconds), TimeSpan.FromSeconds(warmup), count,
            (int)pending, (int)concurrency, (int)senders, (int)responses, (int)window,
            server, (int)sessions, (int)rounds, (int)port, (int)warmupResponses, args)
        {
            Postgres = postgres,
            StallBound = TimeSpan.FromSeconds(stallBound),
            Mosquitto = mosquitto,
            Idle = TimeSpan.FromSeconds(idle),
            Transport = transport ?? "ws",
            Cluster = (int)cluster,
            SendersLogIn = sendersLogIn != "no",
        };
        return true;
    }

    /// <summary>The options of one scenario of <c>all</c>: the same command line, with that scenario's defaults.</summary>
    public BenchmarkOptions For(string scenario)
    {
        string[] args = [scenario, .. Arguments.Skip(1)];
        return TryParse(args, out var options, out var problem) ? options : throw new ArgumentException(problem, nameof(scenario));
    }

    /// <summary>The chaos run's database server: required, and on this machine like everything this tool loads.</summary>
    private static string? CheckPostgres(string? text, out string? postgres)
    {
        postgres = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return "chaos and --cluster need --postgres \"<connection string>\" (or GATEWAY_TEST_POSTGRES): a PostgreSQL login that may create databases.";
        }

        try
        {
            var host = new Npgsql.NpgsqlConnectionStringBuilder(text).Host;
            if (host is not ("127.0.0.1" or "localhost" or "::1"))
            {
                return $"--postgres must name a server on this machine (127.0.0.1, ::1, localhost), not '{host}'.";
            }
        }
        catch (ArgumentException ex)
        {
            return $"--postgres is not a PostgreSQL connection string: {ex.Message}";
        }

        postgres = text;
        return null;
    }

    /// <summary>The broker must be installed: a run that asked for the comparison and cannot make it fails at once.</summary>
    private static string? CheckMosquitto(string? name, out string? mosquitto)
    {
        mosquitto = name is null ? null : Mqtt.MosquittoProcess.Find(name);
        return name is null || mosquitto is not null ? null : Mqtt.MosquittoProcess.NotInstalled(name);
    }

    private static string? CheckServer(string? path, out string? server)
    {
        server = path is null ? null : Path.GetFullPath(path);
        return server is null || File.Exists(server) ? null : $"--server '{path}' does not exist; build first: dotnet build -c Release Orleans.sln";
    }

    /// <summary>Refuses anything but ws(s) to a loopback address: this tool floods whatever it is pointed at.</summary>
    private static string? CheckUrl(string text, out Uri? url)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out url) || url.Scheme is not ("ws" or "wss"))
        {
            return $"--url '{text}' is not a ws:// or wss:// URL.";
        }

        // A name is taken only if it is localhost and every address it resolves to is loopback.
        var host = url.HostNameType == UriHostNameType.IPv6 ? url.Host.Trim('[', ']') : url.Host;
        var loopback = IPAddress.TryParse(host, out var address)
            ? IPAddress.IsLoopback(address)
            : host.Equals("localhost", StringComparison.OrdinalIgnoreCase) && ResolvesToLoopbackOnly(host);
        return loopback ? null : $"--url '{text}' is not a loopback address; this tool only loads a server on this machine (127.0.0.0/8, ::1, localhost).";
    }

    private static bool ResolvesToLoopbackOnly(string host)
    {
        try
        {
            var addresses = Dns.GetHostAddresses(host);
            return addresses.Length > 0 && addresses.All(IPAddress.IsLoopback);
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string? Whole(Dictionary<string, string> values, string name, long fallback, long min, long max, out long value)
    {
        value = fallback;
        return !values.TryGetValue(name, out var text)
            || (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max)
            ? null
            : $"{name} must be a whole number from {min} to {max}, not '{text}'.";
    }

    private static string? Seconds(Dictionary<string, string> values, string name, double fallback, double min, double max, out double value)
    {
        value = fallback;
        return !values.TryGetValue(name, out var text)
            || (double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value) && value >= min && value <= max)
            ? null
            : $"{name} must be a number of seconds from {min} to {max}, not '{text}'.";
    }
}
