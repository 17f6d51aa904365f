using System.Net;
using Tests.Infrastructure;

namespace Tests.EndToEnd;

[Collection(GatewayCollection.Name)]
public sealed class HttpEndpointsTests(GatewayFixture fixture)
{
    [Fact]
    public async Task HealthEndpointsAnswerWhileClusterAndStorageWork()
    {
        using var http = new HttpClient { BaseAddress = fixture.Server.HttpUri, Timeout = WsClient.Timeout };

        using var live = await http.GetAsync(new Uri("/health/live", UriKind.Relative), TestContext.Current.CancellationToken);
        using var ready = await http.GetAsync(new Uri("/health/ready", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }

    [Fact]
    public async Task MetricsCountConnectionsRequestsAndResponses()
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var (token, id) = await client.RegisterAsync(new { name = "metered" });
        await client.RequestAsync("login", new { token });
        await client.RequestAsync("send", new { token, to = id, payload = 1 });
        await client.SendTextAsync("not json");
        await client.ReceiveAsync();
        using var http = new HttpClient { BaseAddress = fixture.Server.HttpUri, Timeout = WsClient.Timeout };

        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Contains("gateway_connections{otel_scope_name=\"Gateway\"} ", text, StringComparison.Ordinal);
        Assert.Contains("gateway_online_sessions{otel_scope_name=\"Gateway\"} ", text, StringComparison.Ordinal);
        Assert.Contains("gateway_requests_total{otel_scope_name=\"Gateway\",action=\"register\",outcome=\"ok\"}", text, StringComparison.Ordinal);
        Assert.Contains("gateway_requests_total{otel_scope_name=\"Gateway\",action=\"invalid\",outcome=\"bad_request\"}", text, StringComparison.Ordinal);
        Assert.Contains("gateway_responses_total{otel_scope_name=\"Gateway\",delivered=\"online\"}", text, StringComparison.Ordinal);
        Assert.Contains("gateway_request_duration_seconds_bucket{otel_scope_name=\"Gateway\",action=\"login\",le=\"0.0005\"}", text, StringComparison.Ordinal);
        Assert.Contains("gateway_login_queue_length_bucket{otel_scope_name=\"Gateway\",le=\"1000\"}", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE gateway_requests_total counter", text, StringComparison.Ordinal);

        // ASP.NET Core's per-request instruments are not listened to; the runtime's are.
        Assert.DoesNotContain("http_server_request_duration", text, StringComparison.Ordinal);
        Assert.DoesNotContain("kestrel_active_connections", text, StringComparison.Ordinal);
        Assert.Contains("dotnet_gc_collections_total", text, StringComparison.Ordinal);
    }
}
