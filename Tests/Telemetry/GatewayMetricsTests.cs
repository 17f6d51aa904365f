using System.Diagnostics.Metrics;
using System.Net;
using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Tests.Abuse;
using Tests.Infrastructure;
using WebSocketFrontend.Hosting;

namespace Tests.Telemetry;

/// <summary>
/// The gateway's instruments, read from one server's own meter factory: every count is exact, since no
/// other server in the test process reaches these collectors.
/// </summary>
public sealed class GatewayMetricsTests
{
    [Fact]
    public async Task EachRequestIsCountedOnceUnderItsActionAndOutcomeAndTimed()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);
        using var requests = Collect<long>(server, "gateway.requests");
        using var durations = Collect<double>(server, "gateway.request.duration");
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        await using var stranger = await WsClient.ConnectAsync(server.WebSocketUri);

        var (token, _) = await client.RegisterAsync(new { name = "counted" });
        Assert.Equal("logged", (await client.RequestAsync("login", new { token })).Action());
        Assert.Equal("invalid_token", (await stranger.RequestAsync("login", new { token = TokenDigest.NewToken() })).ErrorCode());
        await client.SendTextAsync("not json");
        Assert.Equal("bad_request", (await client.ReceiveAsync()).ErrorCode());

        Assert.Equal(1, Sum(requests, ("action", "register"), ("outcome", "ok")));
        Assert.Equal(1, Sum(requests, ("action", "login"), ("outcome", "ok")));
        Assert.Equal(1, Sum(requests, ("action", "login"), ("outcome", "invalid_token")));
        Assert.Equal(1, Sum(requests, ("action", "invalid"), ("outcome", "bad_request")));
        Assert.Equal(4, Sum(requests));

        // A frame that is no request is answered before any action is timed.
        var timed = durations.GetMeasurementSnapshot();
        Assert.Equal(["login", "login", "register"], timed.Select(m => (string)m.Tags["action"]!).Order());
        Assert.All(timed, m => Assert.True(m.Value > 0));
    }

    [Fact]
    public async Task APushCountsEveryResponseItDeliversAndEachIsTakenInOnline()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);
        using var pushed = Collect<long>(server, "gateway.pushed");
        using var responses = Collect<long>(server, "gateway.responses");
        await using var receiver = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, id) = await receiver.RegisterAsync(new { name = "receiver" });
        Assert.Equal("logged", (await receiver.RequestAsync("login", new { token })).Action());
        using var api = new ApiClient(server.HttpUri);

        for (var i = 0; i < 3; i++)
        {
            var (status, _) = await api.PostResponseAsync(id, $"{{\"n\":{i}}}");
            Assert.Equal(HttpStatusCode.Accepted, status);
        }

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("response", (await receiver.NextPushAsync()).Action());
        }

        // The count follows the write the client has already read.
        await WaitUntilAsync(() => Sum(pushed) >= 3);
        Assert.Equal(3, Sum(pushed));
        Assert.Equal(3, Sum(responses, ("delivered", "online")));
        Assert.Equal(3, Sum(responses));
    }

    [Fact]
    public async Task QueuedResponsesAreCountedAndTheQueueALoginFindsIsRecorded()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);
        using var responses = Collect<long>(server, "gateway.responses");
        using var queueLengths = Collect<long>(server, "gateway.login.queue_length");
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, id) = await client.RegisterAsync(new { name = "offline" });
        using var api = new ApiClient(server.HttpUri);

        Assert.Equal(HttpStatusCode.Accepted, (await api.PostResponseAsync(id, "1")).Status);
        Assert.Equal(HttpStatusCode.Accepted, (await api.PostResponseAsync(id, "2")).Status);
        Assert.Equal(2, Sum(responses, ("delivered", "queued")));
        Assert.Empty(queueLengths.GetMeasurementSnapshot());

        Assert.Equal("logged", (await client.RequestAsync("login", new { token })).Action());

        Assert.Equal(2, Assert.Single(queueLengths.GetMeasurementSnapshot()).Value);
        Assert.Equal(2, Sum(responses));
    }

    [Fact]
    public async Task TheConnectionAndSessionGaugesGoUpAtConnectAndLoginAndDownWhenTheSocketCloses()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);
        using var connections = Collect<int>(server, "gateway.connections");
        using var sessions = Collect<int>(server, "gateway.online_sessions");
        Assert.Equal((0, 0), Read(connections, sessions));

        var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, _) = await client.RegisterAsync(new { name = "gauged" });
        Assert.Equal((1, 0), Read(connections, sessions));

        Assert.Equal("logged", (await client.RequestAsync("login", new { token })).Action());
        Assert.Equal((1, 1), Read(connections, sessions));

        await client.DisposeAsync();
        await WaitUntilAsync(() => Read(connections, sessions) == (0, 0));
        Assert.Equal((0, 0), Read(connections, sessions));
    }

    [Fact]
    public async Task AConnectionRefusedForItsOriginCountsOnceUnderReasonOrigin()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:AllowedOrigins:0"] = "https://app.example.com",
        });
        using var refused = Collect<long>(server, "gateway.connections_refused");

        await using var listed = await Upgrade.TryAsync(server.WebSocketUri, new Dictionary<string, string> { ["Origin"] = "https://app.example.com" });
        await using var forged = await Upgrade.TryAsync(server.WebSocketUri, new Dictionary<string, string> { ["Origin"] = "https://evil.example" });

        Assert.True(listed.Accepted);
        Assert.Equal(HttpStatusCode.Forbidden, forged.Status);
        var measurement = Assert.Single(refused.GetMeasurementSnapshot());
        Assert.Equal(1, measurement.Value);
        Assert.Equal("origin", measurement.Tags["reason"]);
    }

    private static MetricCollector<T> Collect<T>(GatewayServer server, string instrument)
        where T : struct =>
        new(server.Services.GetRequiredService<IMeterFactory>(), GatewayMetrics.MeterName, instrument);

    private static long Sum(MetricCollector<long> collector, params (string Key, string Value)[] tags) =>
        collector.GetMeasurementSnapshot()
            .Where(m => tags.All(t => Equals(m.Tags.GetValueOrDefault(t.Key), t.Value)))
            .Sum(m => m.Value);

    /// <summary>Collects both gauges now, as a scrape would, and returns their values.</summary>
    private static (int Connections, int Sessions) Read(MetricCollector<int> connections, MetricCollector<int> sessions)
    {
        connections.RecordObservableInstruments();
        sessions.RecordObservableInstruments();
        return (connections.LastMeasurement!.Value, sessions.LastMeasurement!.Value);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
