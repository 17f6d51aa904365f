using Prometheus;

namespace WebSocketFrontend.Edge;

/// <summary>What <c>/metrics</c> says about refusals at the edge: admission and per-address budgets.</summary>
public static class EdgeMetrics
{
    public static readonly Counter ConnectionsRefused = Metrics.CreateCounter(
        "gateway_connections_refused_total",
        "Connections refused before the upgrade, by reason: connections (total cap, 503), connections_per_ip and connection_rate (429), origin (403).",
        new CounterConfiguration { LabelNames = ["reason"] });

    public static readonly Counter BudgetRefusals = Metrics.CreateCounter(
        "gateway_budget_refusals_total",
        "Requests answered rate_limited by a per-address budget before any grain call, by budget: registrations or token_failures.",
        new CounterConfiguration { LabelNames = ["budget"] });

    public static readonly Counter TokenFailures = Metrics.CreateCounter(
        "gateway_token_failures_total", "Failed token checks (invalid_token, and wrong registration keys) charged to their address.");

    public static readonly Counter AuthenticationTimeouts = Metrics.CreateCounter(
        "gateway_authentication_timeouts_total", "Sockets closed because they did not register or log in within Protocol:AuthenticationTimeout.");

    public static string Label(AdmissionReason reason) => reason switch
    {
        AdmissionReason.Connections => "connections",
        AdmissionReason.ConnectionsPerIp => "connections_per_ip",
        AdmissionReason.ConnectionRate => "connection_rate",
        _ => "origin",
    };
}
