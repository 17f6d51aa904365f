using System.Text.Json;
using Tests.ClientLibrary;
using Tests.Infrastructure;

namespace Tests.EndToEnd;

[Collection(GatewayCollection.Name)]
public sealed class ClientLifecycleTests(GatewayFixture fixture)
{
    [Fact]
    public async Task RegisterLoginUpdateOverOneSocket()
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);

        var (token, id) = await client.RegisterAsync(new { name = "probe-7", location = "Turin" });
        Assert.Equal(43, token.Length);
        Assert.True(id > 0);

        var logged = await client.RequestAsync("login", new { token });
        Assert.Equal("logged", logged.Action());
        Assert.Equal(JsonValueKind.Array, logged.Parameters().GetProperty("queue").ValueKind);
        Assert.Equal(id, logged.Parameters().GetProperty("id").GetInt32());

        var updated = await client.RequestAsync("update", new { token, information = new { name = "probe-8" } });
        Assert.Equal("updated", updated.Action());
        Assert.Equal(JsonValueKind.Object, updated.Parameters().ValueKind);
    }

    [Fact]
    public async Task RequestIdIsEchoedAsGivenWhetherStringOrNumber()
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);

        await client.SendTextAsync(WsClient.Envelope("ping", requestId: "abc-1"));
        Assert.Equal("abc-1", (await client.ReceiveAsync()).GetProperty("requestId").GetString());

        await client.SendTextAsync("""{"event":"client.to.instance","body":{"action":"ping","requestId":12.50}}""");
        Assert.Equal("12.50", (await client.ReceiveAsync()).GetProperty("requestId").GetRawText());

        await client.SendTextAsync("""{"event":"client.to.instance","body":{"action":"ping"}}""");
        Assert.False((await client.ReceiveAsync()).TryGetProperty("requestId", out _));
    }

    [Fact]
    public async Task PropertyNamesMatchWhateverTheirCase()
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var (token, id) = await client.RegisterAsync(new { name = "cased" });

        await client.SendTextAsync("""{"Event":"client.to.instance","Body":{"Action":"login","RequestId":1,"Parameters":{"Token":""" + "\"" + token + "\"}}}");
        var logged = await client.ReceiveAsync();

        Assert.Equal("logged", logged.Action());
        Assert.Equal(id, logged.Parameters().GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task PropertyNamesWrittenWithEscapesMatchAsTheirTextWhateverItsCase()
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var (token, id) = await client.RegisterAsync(new { name = "escaped" });

        // "\u0045vent", "\u0062ody", "\u0041ction", "\u0054oken": Event, body, Action, Token.
        await client.SendTextAsync("""{"\u0045vent":"client.to.instance","\u0062ody":{"\u0041ction":"login","requestId":1,"parameters":{"\u0054oken":""" + "\"" + token + "\"}}}");
        var logged = await client.ReceiveAsync();

        Assert.Equal("logged", logged.Action());
        Assert.Equal(id, logged.Parameters().GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task UpdateNeedsNoLoginAndTheLoginAfterItReturnsTheNewInformation()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var first = await Clients.ConnectAsync(fixture.Server.WebSocketUri);
        var me = await first.RegisterAsync(new { name = "before" }, ct);

        await using var second = await Clients.ConnectAsync(fixture.Server.WebSocketUri);
        await second.UpdateAsync(me.Token, new { name = "after", tags = new[] { 1, 2 } }, ct);

        var logged = await second.LoginAsync(me.Token, cancellationToken: ct);
        Assert.Equal("""{"name":"after","tags":[1,2]}""", logged.Information.GetRawText());
    }

    [Fact]
    public async Task InformationIsKeptExactlyAsSent()
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        const string information = """{ "z": 1, "a": 12345678901234567890.000, "name": "keeps order", "nested": {"y": [true, null, 1e3]} }""";

        await client.SendTextAsync("""{"event":"client.to.instance","body":{"action":"register","requestId":1,"parameters":{"information":""" + information + "}}}");
        var token = (await client.ReceiveAsync()).Parameters().GetProperty("token").GetString();
        var logged = await client.RequestAsync("login", new { token });

        Assert.Equal(information, logged.Parameters().GetProperty("information").GetRawText());
    }
}
