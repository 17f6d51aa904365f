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
    /// <summary>Codes that mean the server is wrong, not merely slow or busy.</summary>
    private static readonly string[] _failureCodes =
        ["duplicate_id", "wrong_id", "lost", "duplicate", "out_of_order", "wrong_seq", "wrong_recipient", "redelivered"];

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
            responses is { } count ? (seconds > 0 ? Math.Round(count / seconds, 1) : 0) : null);
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

/// <summary>Prints the results: a Markdown table for people, then one JSON line per scenario for scripts.</summary>
public static class Report
{
    public static void Print(IReadOnlyList<ScenarioResult> results, TextWriter output)
    {
        output.WriteLine();
        output.WriteLine("| scenario | clients | seconds | ops | ops/s | p50 ms | p99 ms | max ms | responses | responses/s | errors |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in results)
        {
            var errors = r.Errors.Count == 0 ? "none" : string.Join(", ", r.Errors.Select(e => $"{e.Key}={e.Value}"));
            output.WriteLine(FormattableString.Invariant(
                $"| {r.Scenario}{(r.Failed ? " **FAILED**" : "")} | {r.Clients} | {r.Seconds:0.00} | {r.Ops} | {r.OpsPerSecond:0.0} | {r.P50Ms:0.00} | {r.P99Ms:0.00} | {r.MaxMs:0.00} | {r.Responses?.ToString(CultureInfo.InvariantCulture) ?? "-"} | {r.ResponsesPerSecond?.ToString("0.0", CultureInfo.InvariantCulture) ?? "-"} | {errors} |"));
        }

        output.WriteLine();
        foreach (var r in results)
        {
            output.WriteLine(r.ToJson());
        }
    }
}
