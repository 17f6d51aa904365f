using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grains.Interfaces;
using WebSocketFrontend.Sessions;

namespace WebSocketFrontend.Hosting;

/// <summary>
/// The gateway's instruments, on the <see cref="MeterName"/> meter of this host's <see cref="IMeterFactory"/>.
/// OpenTelemetry exports them: <c>/metrics</c> in Prometheus text (dots become underscores, counters gain
/// <c>_total</c>, seconds <c>_seconds</c>), and OTLP when configured.
/// </summary>
public sealed class GatewayMetrics
{
    /// <summary>The meter of every gateway instrument, the edge's included.</summary>
    public const string MeterName = "Gateway";

    private long _accepted;
    private long _pushed;

    private SessionRegistry? _registry;

    public GatewayMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        meter.CreateObservableGauge("gateway.connections", () => _registry?.Count ?? 0, "{connection}",
            "Open client connections on this frontend, whatever their transport.");
        meter.CreateObservableGauge("gateway.online_sessions", () => _registry?.Sessions.Count(s => s.Login is not null) ?? 0, "{session}",
            "Logged-in connections on this frontend.");
        Requests = meter.CreateCounter<long>("gateway.requests", "{request}",
            "Requests answered, by action and outcome (the error code, or ok).");
        RequestDuration = meter.CreateHistogram("gateway.request.duration", "s",
            "Time from a request's arrival to its reply being queued, by action.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ExponentialBuckets(0.0005, 2, 14) });
        Responses = meter.CreateCounter<long>("gateway.responses", "{response}",
            "Responses accepted from senders, by how they were taken in (online or queued).");
        Pushed = meter.CreateCounter<long>("gateway.pushed", "{response}", "Responses pushed to connections of this frontend.");
        LoginQueueLength = meter.CreateHistogram("gateway.login.queue_length", "{response}",
            "Pending responses handed over at login (the queue depth clients find).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [0, 1, 5, 10, 50, 100, 500, 1000] });
        PolicyCloses = meter.CreateCounter<long>("gateway.policy_closes", "{connection}",
            "Connections closed with 1008 by a per-connection limit (rate_limit, outbox_bytes, frame_timeout).");
    }

    /// <summary><c>gateway.requests</c>, tags <c>action</c> and <c>outcome</c>.</summary>
    public Counter<long> Requests { get; }

    /// <summary><c>gateway.request.duration</c> in seconds, tag <c>action</c>.</summary>
    public Histogram<double> RequestDuration { get; }

    /// <summary><c>gateway.responses</c>, tag <c>delivered</c> (online or queued).</summary>
    public Counter<long> Responses { get; }

    /// <summary><c>gateway.pushed</c>.</summary>
    public Counter<long> Pushed { get; }

    /// <summary><c>gateway.login.queue_length</c>.</summary>
    public Histogram<long> LoginQueueLength { get; }

    /// <summary><c>gateway.policy_closes</c>, tag <c>limit</c>.</summary>
    public Counter<long> PolicyCloses { get; }

    /// <summary>Counts one answered request.</summary>
    public void CountRequest(string action, string outcome) =>
        Requests.Add(1, new KeyValuePair<string, object?>("action", action), new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>Responses senders handed in through this frontend since it started (the admin stats route reads it).</summary>
    public long ResponsesAccepted => Interlocked.Read(ref _accepted);

    /// <summary>Responses this frontend pushed to its connections since it started.</summary>
    public long ResponsesPushed => Interlocked.Read(ref _pushed);

    /// <summary>Counts a response a sender handed in, when it was taken.</summary>
    public void CountSent(SendResult result)
    {
        if (result.Status is SendStatus.Online or SendStatus.Queued)
        {
            Interlocked.Increment(ref _accepted);
            Responses.Add(1, new KeyValuePair<string, object?>("delivered", result.Status == SendStatus.Online ? "online" : "queued"));
        }
    }

    /// <summary>Counts <paramref name="count"/> responses pushed to a connection.</summary>
    public void CountPushed(int count)
    {
        Interlocked.Add(ref _pushed, count);
        Pushed.Add(count);
    }

    /// <summary>Counts a connection closed by the per-connection <paramref name="limit"/>.</summary>
    public void CountPolicyClose(string limit) => PolicyCloses.Add(1, new KeyValuePair<string, object?>("limit", limit));

    /// <summary>Times one request of <paramref name="action"/> until the returned value is disposed.</summary>
    public RequestTimer TimeRequest(string action) => new(this, action, Stopwatch.GetTimestamp());

    /// <summary>The connection and session gauges read <paramref name="registry"/> when they are collected.</summary>
    public void Observe(SessionRegistry registry) => _registry = registry;

    private static double[] ExponentialBuckets(double start, double factor, int count)
    {
        var buckets = new double[count];
        for (var i = 0; i < count; i++)
        {
            buckets[i] = start * Math.Pow(factor, i);
        }

        return buckets;
    }

    /// <summary>Records the time since its start in <c>gateway.request.duration</c> when disposed.</summary>
    public readonly struct RequestTimer(GatewayMetrics metrics, string action, long started) : IDisposable
    {
        public void Dispose() =>
            metrics.RequestDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("action", action));
    }
}
