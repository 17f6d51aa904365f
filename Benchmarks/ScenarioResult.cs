using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Benchmarks;

/// <summary>The figures of one scenario; serialized as its JSON line.</summary>
/// <param name="Scenario">The scenario's name.</param>
/// <param name="Clients">Concurrent sockets.</param>
/// <param name="Seconds">The measured window, up to the last measured operation's end.</param>
/// <param name="Ops">Operations that succeeded in the measured window (drain: logins; online-delivery: responses delivered).</param>
/// <param name="OpsPerSecond"><paramref name="Ops"/> over <paramref name="Seconds"/>.</param>
/// <param name="P50Ms">Median latency of one operation (online-delivery: send to receipt of one response).</param>
/// <param name="P99Ms">99th-percentile latency.</param>
/// <param name="MaxMs">Slowest operation.</param>
/// <param name="Errors">Failures by code over the whole run (preparation and warm-up included).</param>
/// <param name="Failed">True when the server broke a guarantee (a duplicate id, a login answered with another client's id, a response lost or delivered twice).</param>
/// <param name="Responses">Responses received in the measured window, for the scenarios that deliver them.</param>
/// <param name="ResponsesPerSecond"><paramref name="Responses"/> over <paramref name="Seconds"/>.</param>
public sealed record ScenarioResult(
    string Scenario, int Clients, double Seconds, long Ops, double OpsPerSecond,
    double P50Ms, double P99Ms, double MaxMs, IReadOnlyDictionary<string, long> Errors, bool Failed,
    long? Responses = null, double? ResponsesPerSecond = null)
{
    /// <summary>Which server the row measured: <c>gateway</c>, <c>socket.io</c> (the gateway over Socket.IO), <c>ceiling</c> or <c>mosquitto</c>.</summary>
    public string Server { get; init; } = "gateway";

    /// <summary>connect-login and hold: the gateway/ceiling pair the row belongs to, from 1.</summary>
    public int? Round { get; init; }

    /// <summary>queue-depth: the responses the queue held once the measured one was in.</summary>
    public int? Depth { get; init; }

    /// <summary>Mean latency of one operation.</summary>
    public double? MeanMs { get; init; }

    /// <summary>hold: the server's resident memory before the sessions opened.</summary>
    public long? RssBeforeBytes { get; init; }

    /// <summary>hold: the server's resident memory with every session open.</summary>
    public long? RssAfterBytes { get; init; }

    /// <summary>hold: (after − before) / sessions held.</summary>
    public double? BytesPerSession { get; init; }

    /// <summary>The first seconds of load that <see cref="StartOpsPerSecond"/> covers.</summary>
    public const double StartSeconds = 10;

    /// <summary>
    /// register, login, connect-login: operations per second over the first <see cref="StartSeconds"/> of load
    /// (warm-up included), against <see cref="OpsPerSecond"/> of the measured window, the steady state.
    /// </summary>
    public double? StartOpsPerSecond { get; init; }

    /// <summary><see cref="StartOpsPerSecond"/> over <see cref="OpsPerSecond"/>.</summary>
    public double? StartRatio => StartOpsPerSecond is { } first && OpsPerSecond > 0 ? Math.Round(first / OpsPerSecond, 2) : null;

    /// <summary>
    /// drain, online-delivery and connect-login on a server the tool started: the CPU (user + system) the server
    /// process used while the measured responses (connect-login: the measured sessions) went through.
    /// </summary>
    public double? ServerCpuSeconds { get; init; }

    /// <summary>
    /// <see cref="ServerCpuSeconds"/> per delivered response, in microseconds; for a scenario that delivers none
    /// (connect-login), per operation: one session's open, <c>logged</c> and close.
    /// </summary>
    public double? CpuMicrosecondsPerResponse =>
        ServerCpuSeconds is { } cpu && (Responses ?? Ops) is > 0 and var count ? Math.Round(cpu * 1e6 / count, 1) : null;

    /// <summary>queue-depth: median bytes the server wrote to storage for one measured operation (write_bytes in /proc/PID/io).</summary>
    public double? StorageBytesPerOp { get; init; }

    /// <summary>Codes that mean the server is wrong, not merely slow or busy.</summary>
    private static readonly string[] _failureCodes =
        ["duplicate_id", "wrong_id", "lost", "duplicate", "out_of_order", "wrong_seq", "wrong_recipient", "redelivered",
         "duplicate_default", "seq_repeat", "information_lost", "login_failed", "stored_despite_unavailable",
         "update_applied_despite_unavailable", "send_refused", "refused", "stall"];

    // Scenarios without responses keep the JSON line they always had.
    private static readonly JsonSerializerOptions _json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static ScenarioResult From(
        string scenario, int clients, TimeSpan window, long[] latencies, IReadOnlyDictionary<string, long> errors, long? responses = null)
    {
        Array.Sort(latencies);
        var seconds = window.TotalSeconds;
        return new ScenarioResult(
            scenario,
            clients,
            Math.Round(seconds, 2),
            latencies.Length,
            seconds > 0 ? Math.Round(latencies.Length / seconds, 1) : 0,
            Percentile(latencies, 0.50),
            Percentile(latencies, 0.99),
            Percentile(latencies, 1.00),
            new SortedDictionary<string, long>(errors.ToDictionary(), StringComparer.Ordinal),
            _failureCodes.Any(errors.ContainsKey),
            responses,
            responses is { } count ? (seconds > 0 ? Math.Round(count / seconds, 1) : 0) : null)
        {
            MeanMs = latencies.Length == 0 ? 0 : Math.Round(latencies.Average() * 1000.0 / Stopwatch.Frequency, 3),
        };
    }

    public string ToJson() => JsonSerializer.Serialize(this, _json);

    /// <summary>Nearest-rank percentile of sorted timestamp ticks, in milliseconds.</summary>
    private static double Percentile(long[] sorted, double fraction)
    {
        if (sorted.Length == 0)
        {
            return 0;
        }

        var rank = (int)Math.Ceiling(fraction * sorted.Length);
        return Math.Round(sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)] * 1000.0 / Stopwatch.Frequency, 2);
    }
}

/// <summary>
/// Prints the results: a Markdown table for people, the gateway/ceiling comparison and the queue-depth
/// summary when those ran, then one JSON line per row for scripts.
/// </summary>
public static class Report
{
    public static void Print(IReadOnlyList<ScenarioResult> results, TextWriter output)
    {
        output.WriteLine();
        output.WriteLine("| scenario | server | clients | seconds | ops | ops/s | p50 ms | p99 ms | max ms | responses | responses/s | server CPU µs/response | memory/session | bytes written/op | errors |");
        output.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in results)
        {
            var errors = r.Errors.Count == 0 ? "none" : string.Join(", ", r.Errors.Select(e => $"{e.Key}={e.Value}"));
            var name = r.Depth is { } depth ? $"{r.Scenario} {depth}" : r.Scenario;
            output.WriteLine(FormattableString.Invariant(
                $"| {name}{(r.Failed ? " **FAILED**" : "")} | {r.Server}{(r.Round is { } round ? $" #{round}" : "")} | {r.Clients} | {r.Seconds:0.00} | {r.Ops} | {r.OpsPerSecond:0.0} | {r.P50Ms:0.00} | {r.P99Ms:0.00} | {r.MaxMs:0.00} | {Optional(r.Responses)} | {Optional(r.ResponsesPerSecond, "0.0")} | {Optional(r.CpuMicrosecondsPerResponse, "0.0")} | {Optional(r.BytesPerSession / 1024, "0.0 KiB")} | {Optional(r.StorageBytesPerOp, "0")} | {errors} |"));
        }

        PrintComparison(results, output);
        PrintTransports(results, output);
        PrintStart(results, output);
        PrintQueueDepth(results, output);

        output.WriteLine();
        foreach (var r in results)
        {
            output.WriteLine(r.ToJson());
        }
    }

    /// <summary>
    /// The gateway against each peer that ran the same scenario, the ceiling and Mosquitto: sessions/s over
    /// all rounds for connect-login, mean memory per session for hold, responses/s for drain and
    /// online-delivery (with p99 and server CPU per response beside them), and the ratio of each round's pair.
    /// </summary>
    private static void PrintComparison(IReadOnlyList<ScenarioResult> results, TextWriter output)
    {
        var pairs = results.Where(r => r.Server is not ("gateway" or BenchmarkPlan.SocketIoRow)).Select(r => (r.Scenario, Peer: r.Server)).Distinct().ToArray();
        if (pairs.Length == 0)
        {
            return;
        }

        output.WriteLine();
        output.WriteLine("| scenario | peer | measure | gateway | peer | gateway/peer | by round | p99 ms gateway / peer | server CPU µs/response gateway / peer (ratio) |");
        output.WriteLine("|---|---|---|---:|---:|---:|---|---|---|");
        foreach (var (scenario, peer) in pairs)
        {
            var rows = results.Where(r => r.Scenario == scenario).ToArray();
            double Figure(IEnumerable<ScenarioResult> of) => Headline(scenario, of);
            var gateway = rows.Where(r => r.Server == "gateway").ToArray();
            var other = rows.Where(r => r.Server == peer).ToArray();
            if (gateway.Length == 0)
            {
                continue;
            }

            var byRound = gateway
                .Join(other, g => g.Round, c => c.Round, (g, c) => Ratio(Figure([g]), Figure([c])))
                .Select(x => x.ToString("0.00", CultureInfo.InvariantCulture));
            var p99 = FormattableString.Invariant($"{gateway.Max(r => r.P99Ms):0.00} / {other.Max(r => r.P99Ms):0.00}");
            var cpu = gateway.Select(r => r.CpuMicrosecondsPerResponse).FirstOrDefault(c => c is not null) is { } g1
                && other.Select(r => r.CpuMicrosecondsPerResponse).FirstOrDefault(c => c is not null) is { } p1
                ? FormattableString.Invariant($"{g1:0.0} / {p1:0.0} ({Ratio(g1, p1):0.00})")
                : "-";
            var measure = MeasureOf(scenario);
            output.WriteLine(FormattableString.Invariant(
                $"| {scenario} | {peer} | {measure} | {Figure(gateway):0.0} | {Figure(other):0.0} | {Ratio(Figure(gateway), Figure(other)):0.00} | {string.Join(" · ", byRound)} | {p99} | {cpu} |"));
        }
    }

    /// <summary>
    /// The gateway over Socket.IO against the gateway over raw <c>/ws</c>, for the scenarios that ran both:
    /// sessions/s for connect-login, responses/s for online-delivery (p99 and server CPU per response beside),
    /// memory per session for hold; overall and round by round.
    /// </summary>
    private static void PrintTransports(IReadOnlyList<ScenarioResult> results, TextWriter output)
    {
        var scenarios = results.Where(r => r.Server == BenchmarkPlan.SocketIoRow).Select(r => r.Scenario).Distinct()
            .Where(s => results.Any(r => r.Scenario == s && r.Server == "gateway")).ToArray();
        if (scenarios.Length == 0)
        {
            return;
        }

        output.WriteLine();
        output.WriteLine("| scenario | measure | raw /ws | Socket.IO | Socket.IO / raw | by round | p99 ms raw / Socket.IO | server CPU µs/response raw / Socket.IO |");
        output.WriteLine("|---|---|---:|---:|---:|---|---|---|");
        foreach (var scenario in scenarios)
        {
            double Figure(IEnumerable<ScenarioResult> of) => Headline(scenario, of);
            var raw = results.Where(r => r.Scenario == scenario && r.Server == "gateway").ToArray();
            var socketIo = results.Where(r => r.Scenario == scenario && r.Server == BenchmarkPlan.SocketIoRow).ToArray();
            var byRound = socketIo
                .Join(raw, s => s.Round, g => g.Round, (s, g) => Ratio(Figure([s]), Figure([g])))
                .Select(x => x.ToString("0.00", CultureInfo.InvariantCulture));
            var p99 = FormattableString.Invariant($"{raw.Max(r => r.P99Ms):0.00} / {socketIo.Max(r => r.P99Ms):0.00}");
            var cpu = raw.Select(r => r.CpuMicrosecondsPerResponse).FirstOrDefault(c => c is not null) is { } a
                && socketIo.Select(r => r.CpuMicrosecondsPerResponse).FirstOrDefault(c => c is not null) is { } b
                ? FormattableString.Invariant($"{a:0.0} / {b:0.0}")
                : "-";
            var measure = MeasureOf(scenario);
            output.WriteLine(FormattableString.Invariant(
                $"| {scenario} | {measure} | {Figure(raw):0.0} | {Figure(socketIo):0.0} | {Ratio(Figure(socketIo), Figure(raw)):0.00} | {(byRound.Any() ? string.Join(" · ", byRound) : "-")} | {p99} | {cpu} |"));
        }
    }

    /// <summary>Throughput in the first seconds of load against the steady state, for the rows that have it.</summary>
    private static void PrintStart(IReadOnlyList<ScenarioResult> results, TextWriter output)
    {
        var rows = results.Where(r => r.StartRatio is not null).ToArray();
        if (rows.Length == 0)
        {
            return;
        }

        output.WriteLine();
        output.WriteLine(FormattableString.Invariant($"| scenario | server | first {ScenarioResult.StartSeconds:0} s ops/s | steady ops/s | first / steady |"));
        output.WriteLine("|---|---|---:|---:|---:|");
        foreach (var r in rows)
        {
            output.WriteLine(FormattableString.Invariant(
                $"| {r.Scenario} | {r.Server}{(r.Round is { } round ? $" #{round}" : "")} | {r.StartOpsPerSecond:0.0} | {r.OpsPerSecond:0.0} | {r.StartRatio:0.00} |"));
        }
    }

    /// <summary>The cost of one enqueue at the deepest queue against the shallowest, in time and in bytes.</summary>
    private static void PrintQueueDepth(IReadOnlyList<ScenarioResult> results, TextWriter output)
    {
        var depths = results.Where(r => r.Depth is not null).OrderBy(r => r.Depth).ToArray();
        if (depths.Length < 2)
        {
            return;
        }

        var (shallow, deep) = (depths[0], depths[^1]);
        output.WriteLine();
        output.WriteLine(FormattableString.Invariant(
            $"queue-depth: one enqueue at depth {deep.Depth} costs {Ratio(deep.P50Ms, shallow.P50Ms):0.00}× the time (p50; mean {Ratio(deep.MeanMs ?? 0, shallow.MeanMs ?? 0):0.00}×) and {(deep.StorageBytesPerOp is { } b && shallow.StorageBytesPerOp is { } a ? Ratio(b, a).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "(not measured)")} the bytes written of one at depth {shallow.Depth}"));
    }

    private static double Ratio(double a, double b) => b > 0 ? a / b : 0;

    /// <summary>
    /// The figure a comparison puts side by side: mean memory per session for hold, responses/s over all rounds
    /// for drain and online-delivery, sessions (operations)/s over all rounds for the rest.
    /// </summary>
    private static double Headline(string scenario, IEnumerable<ScenarioResult> rows) => scenario switch
    {
        "hold" => rows.Average(r => r.BytesPerSession ?? 0) / 1024,
        "drain" or "online-delivery" => rows.Sum(r => r.Responses ?? 0) / Math.Max(rows.Sum(r => r.Seconds), 1e-9),
        _ => rows.Sum(r => r.Ops) / Math.Max(rows.Sum(r => r.Seconds), 1e-9),
    };

    /// <summary>The unit of <see cref="Headline"/>.</summary>
    private static string MeasureOf(string scenario) => scenario switch
    {
        "hold" => "KiB per session",
        "drain" or "online-delivery" => "responses/s",
        _ => "sessions/s",
    };

    private static string Optional(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "-";

    private static string Optional(double? value, string format) => value?.ToString(format, CultureInfo.InvariantCulture) ?? "-";
}
