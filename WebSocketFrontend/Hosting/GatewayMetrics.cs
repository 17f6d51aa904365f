using Grains.Interfaces;
using Prometheus;

namespace WebSocketFrontend.Hosting;

/// <summary>What <c>/metrics</c> exposes, in Prometheus text format, besides the process metrics.</summary>
public static class GatewayMetrics
{
    public static readonly Gauge Connections = Metrics.CreateGauge(
        "gateway_connections", "Open WebSocket connections on this frontend.");

    public static readonly Gauge OnlineSessions = Metrics.CreateGauge(
        "gateway_online_sessions", "Logged-in sockets on this frontend.");

    public static readonly Counter Requests = Metrics.CreateCounter(
        "gateway_requests_total", "Requests answered, by action and outcome (the error code, or ok).",
        new CounterConfiguration { LabelNames = ["action", "outcome"] });

    public static readonly Histogram RequestDuration = Metrics.CreateHistogram(
        "gateway_request_duration_seconds", "Time from a request's arrival to its reply being queued, by action.",
        new HistogramConfiguration
        {
            LabelNames = ["action"],
            Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14),
        });

    public static readonly Counter Responses = Metrics.CreateCounter(
        "gateway_responses_total", "Responses accepted from senders, by how they were taken in (online or queued).",
        new CounterConfiguration { LabelNames = ["delivered"] });

    public static readonly Counter Pushed = Metrics.CreateCounter(
        "gateway_pushed_total", "Responses pushed to sockets of this frontend.");

    public static readonly Histogram LoginQueueLength = Metrics.CreateHistogram(
        "gateway_login_queue_length", "Pending responses handed over at login (the queue depth clients find).",
        new HistogramConfiguration { Buckets = [0, 1, 5, 10, 50, 100, 500, 1000] });

    public static readonly Counter PolicyCloses = Metrics.CreateCounter(
        "gateway_policy_closes_total", "Sockets closed with 1008 by a per-socket limit (rate_limit, outbox_bytes, frame_timeout).",
        new CounterConfiguration { LabelNames = ["limit"] });

    /// <summary>Counts a response a sender handed in, when it was taken.</summary>
    public static void CountSent(SendResult result)
    {
        if (result.Status is SendStatus.Online or SendStatus.Queued)
        {
            Responses.WithLabels(result.Status == SendStatus.Online ? "online" : "queued").Inc();
        }
    }
}
