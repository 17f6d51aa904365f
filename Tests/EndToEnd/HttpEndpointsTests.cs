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

        Assert.Contains("gateway_connections ", text, StringComparison.Ordinal);
        Assert.Contains("gateway_online_sessions ", text, StringComparison.Ordinal);
        Assert.Contains("gateway_requests_total{action=\"register\",outcome=\"ok\"}", text, StringComparison.Ordinal);
        Assert.Contains("gateway_requests_total{action=\"invalid\",outcome=\"bad_request\"}", text, StringComparison.Ordinal);
        Assert.Contains("gateway_responses_total{delivered=\"online\"}", text, StringComparison.Ordinal);
        Assert.Contains("gateway_request_duration_seconds_bucket{action=\"login\"", text, StringComparison.Ordinal);
    }
}
