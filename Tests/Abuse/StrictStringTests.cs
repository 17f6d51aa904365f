using System.Net;
using System.Text.Json;
using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Tests.Infrastructure;

namespace Tests.Abuse;

/// <summary>
/// Lone UTF-16 surrogates, which JSON can escape but no text can hold: refused anywhere in a request, never
/// echoed, and, when a row holds one from before, written out safely by the API and at login.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class StrictStringTests(GatewayFixture fixture)
{
    /// <summary>Requests with a lone surrogate somewhere a string or a name can be; {t} is a registered token.</summary>
    public static TheoryData<string, string> Surrogates => new()
    {
        { "an information value", """register|{"information":{"zz":"\udfff"}}""" },
        { "an information value beside a valid pair", """register|{"information":{"ok":"\ud83d\ude00","zz":"x\ud800y"}}""" },
        { "a nested information value", """register|{"information":{"a":{"b":["x",{"c":"\udbff"}]}}}""" },
        { "a nested information name", """register|{"information":{"a":{"\udc00":1}}}""" },
        { "an information value on update", """update|{"token":"{t}","information":{"name":"ok","zz":"\udfff"}}""" },
        { "a high surrogate followed by a high one", """register|{"information":{"zz":"\ud800\ud800"}}""" },
        { "a payload string", """send|{"token":"{t}","to":1,"payload":"\ud800"}""" },
        { "a name inside the payload", """send|{"token":"{t}","to":1,"payload":{"deep":{"\udfff":true}}}""" },
        { "a parameter nobody reads", """ping|{"extra":"\udfff"}""" },
    };

    [Theory]
    [MemberData(nameof(Surrogates))]
    public async Task ALoneSurrogateAnywhereInARequestIsABadRequestThatChangesNothing(string where, string request)
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var (token, id) = await client.RegisterAsync(new { name = "bystander" });
        var stored = fixture.Database.Snapshot();
        var (action, parameters) = (request.Split('|')[0], request.Split('|')[1].Replace("{t}", token, StringComparison.Ordinal).Replace("\"to\":1", $"\"to\":{id}", StringComparison.Ordinal));

        await client.SendTextAsync($$$"""{"event":"client.to.instance","body":{"action":"{{{action}}}","requestId":"r-1","parameters":{{{parameters}}}}}""");

        var reply = StrictJson.Envelope((await client.ReceiveTextAsync())!);
        Assert.True(reply.ErrorCode() == "bad_request", $"{where}: {reply.GetRawText()}");
        if (!where.Contains("name", StringComparison.Ordinal))
        {
            Assert.Equal("r-1", reply.GetProperty("requestId").GetString());
            Assert.Equal(action, reply.Parameters().GetProperty("request").GetString());
        }
        else
        {
            // A name is refused by the parser's duplicate-name check, before the envelope can be read to echo it.
            Assert.False(reply.TryGetProperty("requestId", out _));
        }
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    [Theory]
    [InlineData("\"\\ud800\"")]
    [InlineData("\"\\udfff\"")]
    [InlineData("\"abc\\ud83d\"")]
    public async Task ARequestIdThatIsNoValidTextIsNeverEchoed(string requestId)
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);

        await client.SendTextAsync($$$"""{"event":"client.to.instance","body":{"action":"ping","requestId":{{{requestId}}}}}""");

        var text = (await client.ReceiveTextAsync())!;
        var reply = StrictJson.Envelope(text);
        Assert.Equal("bad_request", reply.ErrorCode());
        Assert.False(reply.TryGetProperty("requestId", out _), text);
        Assert.Equal("ping", reply.Parameters().GetProperty("request").GetString());
    }

    [Fact]
    public async Task ValidEscapesAndSurrogatePairsAreStoredAndComeBackUnchanged()
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        await client.SendTextAsync("""{"event":"client.to.instance","body":{"action":"register","requestId":"\ud83d\ude00","parameters":{"information":{"name":"\u00e9\ud83d\ude00","\ud83d\ude00":"\\ud800"}}}}""");

        var registered = StrictJson.Envelope((await client.ReceiveTextAsync())!);
        Assert.Equal("registered", registered.Action());
        Assert.Equal("\U0001F600", registered.GetProperty("requestId").GetString());
        var token = registered.Parameters().GetProperty("token").GetString()!;

        await client.SendTextAsync(WsClient.Envelope("login", new { token }, 2));
        var information = StrictJson.Envelope((await client.ReceiveTextAsync())!).Parameters().GetProperty("information");
        Assert.Equal("\u00e9\U0001F600", information.GetProperty("name").GetString());

        // An escaped backslash followed by "ud800" is text, not an escape.
        Assert.Equal("\\ud800", information.GetProperty("\U0001F600").GetString());
    }

    [Fact]
    public async Task TheApiRefusesABodyWithALoneSurrogate()
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var (_, id) = await client.RegisterAsync(new { name = "recipient" });
        var stored = fixture.Database.Snapshot();
        using var api = new ApiClient(fixture.Server.HttpUri);

        var (status, body) = await api.PostResponseAsync(id, """{"command":"\udfff"}""");
        var (nameStatus, _) = await api.PostResponseAsync(id, """{"\ud800":1}""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("bad_request", body.GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, nameStatus);
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    /// <summary>A row written before the check (here straight through the grains) still reads: U+FFFD for the bad half.</summary>
    [Fact]
    public async Task AStoredLoneSurrogateNeverBreaksTheApiOrTheLogin()
    {
        var grains = fixture.Server.Services.GetRequiredService<IGrainFactory>();
        var token = TokenDigest.NewToken();
        var information = new ClientInformation("""{"zz":"\udfff","ok":"\ud83d\ude00","deep":[{"\ud800":"name"}]}""", "probe", null);
        var id = await grains.GetGrain<IClientGrain>(TokenDigest.Of(token)).Register(information);
        await grains.GetGrain<IClientIdGrain>(id).Send(null, """{"p":"a\ud800b"}""");
        using var api = new ApiClient(fixture.Server.HttpUri);

        var (status, client) = await api.GetAsync($"/api/clients/{id}");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("\uFFFD", client.GetProperty("information").GetProperty("zz").GetString());
        Assert.Equal("\U0001F600", client.GetProperty("information").GetProperty("ok").GetString());
        Assert.Equal("name", client.GetProperty("information").GetProperty("deep")[0].GetProperty("\uFFFD").GetString());

        await using var socket = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        await socket.SendTextAsync(WsClient.Envelope("login", new { token }, 1));
        var logged = StrictJson.Envelope((await socket.ReceiveTextAsync())!).Parameters();
        Assert.Equal("\uFFFD", logged.GetProperty("information").GetProperty("zz").GetString());
        Assert.Equal("a\uFFFDb", logged.GetProperty("queue")[0].GetProperty("payload").GetProperty("p").GetString());
    }

    [Fact]
    public void SanitizingLeavesValidJsonAloneAndReplacesOnlyLoneHalves()
    {
        const string valid = """{"a":"\u00e9\ud83d\ude00\\ud800\"\\","b":"é😀"}""";
        Assert.Same(valid, WebSocketFrontend.Protocol.UnicodeText.SanitizeJson(valid));
        Assert.Equal("""{"a":"\ufffd\ud83d\ude00x\ufffd"}""", WebSocketFrontend.Protocol.UnicodeText.SanitizeJson("""{"a":"\udc00\ud83d\ude00x\ud800"}"""));
        Assert.Equal("{\"a\":\"\uFFFD\"}", WebSocketFrontend.Protocol.UnicodeText.SanitizeJson("{\"a\":\"\uD800\"}"));
    }
}
