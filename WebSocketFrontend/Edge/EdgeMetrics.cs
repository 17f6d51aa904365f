using System.Diagnostics.Metrics;
using WebSocketFrontend.Hosting;

namespace WebSocketFrontend.Edge;

/// <summary>The gateway's instruments about refusals at the edge: admission and per-address budgets, on the <see cref="GatewayMetrics.MeterName"/> meter.</summary>
public sealed class EdgeMetrics
{
    public EdgeMetrics(IMeterFactory meters)
    {
        // The factory hands out one meter per name: these instruments sit beside GatewayMetrics' own.
        var meter = meters.Create(GatewayMetrics.MeterName);
        ConnectionsRefused = meter.CreateCounter<long>("gateway.connections_refused", "{connection}",
            "Connections refused before the upgrade, by reason: connections (total cap, 503), connections_per_ip and connection_rate (429), origin (403).");
        BudgetRefusals = meter.CreateCounter<long>("gateway.budget_refusals", "{request}",
            "Requests answered rate_limited by a per-address budget before any grain call, by budget: registrations or token_failures.");
        TokenFailures = meter.CreateCounter<long>("gateway.token_failures", "{request}",
            "Failed token checks (invalid_token, and wrong registration keys) charged to their address.");
        AuthenticationTimeouts = meter.CreateCounter<long>("gateway.authentication_timeouts", "{connection}",
            "Connections closed because they did not register or log in within Protocol:AuthenticationTimeout.");
    }

    /// <summary><c>gateway.connections_refused</c>, tag <c>reason</c>.</summary>
    public Counter<long> ConnectionsRefused { get; }

    /// <summary><c>gateway.budget_refusals</c>, tag <c>budget</c>.</summary>
    public Counter<long> BudgetRefusals { get; }

    /// <summary><c>gateway.token_failures</c>.</summary>
    public Counter<long> TokenFailures { get; }

    /// <summary><c>gateway.authentication_timeouts</c>.</summary>
    public Counter<long> AuthenticationTimeouts { get; }

    /// <summary>Counts one connection refused for <paramref name="reason"/>.</summary>
    public void CountRefused(AdmissionReason reason) => ConnectionsRefused.Add(1, new KeyValuePair<string, object?>("reason", Label(reason)));

    /// <summary>Counts one request refused by <paramref name="budget"/> (registrations or token_failures).</summary>
    public void CountBudgetRefusal(string budget) => BudgetRefusals.Add(1, new KeyValuePair<string, object?>("budget", budget));

    public static string Label(AdmissionReason reason) => reason switch
    {
        AdmissionReason.Connections => "connections",
        AdmissionReason.ConnectionsPerIp => "connections_per_ip",
        AdmissionReason.ConnectionRate => "connection_rate",
        _ => "origin",
    };
}
