using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Benchmarks;

/// <summary>The command line: which scenarios, against which server, how many sockets, for how long.</summary>
/// <param name="Command"><c>register</c>, <c>login</c>, <c>all</c>, <c>drain</c> or <c>online-delivery</c>.</param>
/// <param name="Url">The server's WebSocket endpoint; always a loopback address.</param>
/// <param name="Clients">Concurrent sockets (default 200); for drain and online-delivery, the recipients (default 2,000).</param>
/// <param name="Duration">The measured window (default 10 s); for drain and online-delivery, the time limit of each phase (default 300 s).</param>
/// <param name="Warmup">Load before the measured window, not counted (default 2 s).</param>
/// <param name="Count">At most this many operations are measured, and at most this many run in the warm-up.</param>
/// <param name="Pending">drain: responses queued for each recipient while it is offline (default 50).</param>
/// <param name="Concurrency">drain and online-delivery: sockets registering, connecting or logging in at once (default 200).</param>
/// <param name="Senders">Sender sockets that queue or push the responses (default 4).</param>
/// <param name="Responses">online-delivery: responses pushed in all, to random recipients (default 20,000).</param>
/// <param name="Window">Requests one sender socket has outstanding at most (default 64).</param>
public sealed record BenchmarkOptions(
    string Command, Uri Url, int Clients, TimeSpan Duration, TimeSpan Warmup, long Count,
    int Pending, int Concurrency, int Senders, int Responses, int Window)
{
    public const string Usage = """
        usage: dotnet run -c Release --project Benchmarks -- <command> [options]
          register         sockets registering new clients in a loop
          login            logins on open sockets (login), then open + login + close (connect-login)
          all              register, then login
          drain            recipients get --pending responses each while offline, then all log in at once
                           (--concurrency at a time): logins/s, responses/s, each response exactly once, in order
          online-delivery  --clients recipients stay logged in; --senders sockets push --responses responses
                           to random recipients: delivered/s, end-to-end latency, none lost or duplicated
        options:
          --url          ws://127.0.0.1:5000/ws   the server; must be a loopback address
          --clients      200 (2000)               concurrent sockets (recipients for drain, online-delivery)
          --seconds      10 (300)                 measured duration (time limit of each phase for drain, online-delivery)
          --warmup       2                        seconds of load before measuring (register, login)
          --count        (none)                   cap on measured operations (register, login)
          --pending      50                       drain: responses queued per offline recipient (at most 1000, the server's bound)
          --concurrency  200                      drain, online-delivery: sockets registering or logging in at once
          --senders      4                        drain, online-delivery: sender sockets
          --responses    20000                    online-delivery: responses in all
          --window       64                       drain, online-delivery: outstanding sends per sender socket
        The server answers one request at a time per socket and allows 1000 requests/s (burst 2000) per
        socket by default: start it with --Protocol:RequestsPerSecond=100000 --Protocol:RequestBurst=100000
        for drain and online-delivery, or use more --senders.
        """;

    /// <summary>The cap when <c>--count</c> is not given: far above what a socket can do, so the clock decides.</summary>
    private const long UnboundedCount = 1_000_000_000;

    private static readonly string[] _commands = ["register", "login", "all", "drain", "online-delivery"];

    private static readonly string[] _options =
        ["--url", "--clients", "--seconds", "--warmup", "--count", "--pending", "--concurrency", "--senders", "--responses", "--window"];

    public static bool TryParse(string[] args, [NotNullWhen(true)] out BenchmarkOptions? options, [NotNullWhen(false)] out string? problem)
    {
        options = null;
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
        var phased = args[0] is "drain" or "online-delivery";
        string?[] problems =
        [
            CheckUrl(values.GetValueOrDefault("--url", "ws://127.0.0.1:5000/ws"), out var url),
            Whole(values, "--clients", phased ? 2000 : 200, 1, 10_000, out var clients),
            Seconds(values, "--seconds", phased ? 300 : 10, 0.1, 3600, out var seconds),
            Seconds(values, "--warmup", 2, 0, 600, out var warmup),
            Whole(values, "--count", UnboundedCount, 1, UnboundedCount, out var count),
            Whole(values, "--pending", 50, 1, 1000, out var pending),
            Whole(values, "--concurrency", 200, 1, 10_000, out var concurrency),
            Whole(values, "--senders", 4, 1, 1000, out var senders),
            Whole(values, "--responses", 20_000, 1, 10_000_000, out var responses),
            Whole(values, "--window", 64, 1, 10_000, out var window),
        ];
        problem = problems.FirstOrDefault(p => p is not null);
        if (problem is not null)
        {
            return false;
        }

        options = new BenchmarkOptions(
            args[0], url!, (int)clients, TimeSpan.FromSeconds(seconds), TimeSpan.FromSeconds(warmup), count,
            (int)pending, (int)concurrency, (int)senders, (int)responses, (int)window);
        return true;
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
