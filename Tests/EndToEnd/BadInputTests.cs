using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;

namespace Tests.EndToEnd;

/// <summary>
/// Bad input over a real socket to the real server: each gets the error code of PROTOCOL.md, echoes what
/// could be read of the request, leaves the socket working (except an oversized frame) and changes no stored row.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class BadInputTests(GatewayFixture fixture)
{
    private const string BadRequest = "bad_request";
    private const string TooLarge = "too_large";
    private const string InvalidToken = "invalid_token";

    /// <summary>A well-formed token (43 base64url characters) that no client was ever given.</summary>
    private const string NeverRegisteredToken = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    private static readonly string Oversized = new('x', 9 * 1024);

    private static readonly string LongName = new('n', 257);

    /// <summary>
    /// Every frame that is refused with an error reply on a socket that stays open. A frame is built from the
    /// token of a client registered just before, for the cases that must not change that client.
    /// </summary>
    private static readonly Dictionary<string, BadFrame> Frames = new()
    {
        // Not an envelope at all.
        ["text that is not JSON"] = Refused("hello, server", BadRequest),
        ["an empty text frame"] = Refused("", BadRequest),
        ["a text frame of whitespace only"] = Refused(" \n\t ", BadRequest),
        ["a JSON array as the envelope"] = Refused("""[{"event":"client.to.instance","body":{"action":"ping","requestId":7}}]""", BadRequest),
        ["a JSON string as the envelope"] = Refused("\"client.to.instance\"", BadRequest),
        ["a JSON number as the envelope"] = Refused("42", BadRequest),
        ["JSON null as the envelope"] = Refused("null", BadRequest),
        ["two envelopes in one frame"] = Refused(Ping("7") + Ping("8"), BadRequest),
        ["an envelope with a trailing comma"] = Refused("""{"event":"client.to.instance","body":{"action":"ping","requestId":7},}""", BadRequest),
        ["an envelope with a comment"] = Refused("""{"event":"client.to.instance", /* hi */ "body":{"action":"ping","requestId":7}}""", BadRequest),
        ["an envelope cut short"] = Refused("""{"event":"client.to.instance","body":{"action":"ping","requestId":7""", BadRequest),
        ["JSON nested 1,000 deep as the envelope"] = Refused(new string('[', 1000) + new string(']', 1000), BadRequest),
        ["information nested 1,000 deep"] = Refused(Request("register", "7", """{"information":""" + Nested(1000) + "}"), BadRequest),
        ["a binary frame holding a valid envelope"] = new(_ => Encoding.UTF8.GetBytes(Ping("7")), BadRequest, null, null, WebSocketMessageType.Binary),
        ["a binary frame of random bytes"] = new(_ => [0xde, 0xad, 0xbe, 0xef, 0x00, 0xff], BadRequest, null, null, WebSocketMessageType.Binary),

        // The envelope's own fields.
        ["an envelope without a body"] = Refused("""{"event":"client.to.instance"}""", BadRequest),
        ["a body that is a string"] = Refused("""{"event":"client.to.instance","body":"ping"}""", BadRequest),
        ["a body that is an array"] = Refused("""{"event":"client.to.instance","body":[{"action":"ping"}]}""", BadRequest),
        ["a body without an action"] = Refused("""{"event":"client.to.instance","body":{"requestId":7,"parameters":{}}}""", BadRequest, requestId: "7"),
        ["an action that is a number"] = Refused("""{"event":"client.to.instance","body":{"action":7,"requestId":"a-7"}}""", BadRequest, requestId: "\"a-7\""),
        ["an action that is null"] = Refused("""{"event":"client.to.instance","body":{"action":null,"requestId":7}}""", BadRequest, requestId: "7"),
        ["an empty action"] = Refused("""{"event":"client.to.instance","body":{"action":"","requestId":7}}""", BadRequest, requestId: "7"),
        ["an event meant for clients"] = Refused("""{"event":"instace.to.client","body":{"action":"ping","requestId":7}}""", BadRequest, "ping", "7"),
        ["an event of another case"] = Refused("""{"event":"Client.To.Instance","body":{"action":"ping","requestId":7}}""", BadRequest, "ping", "7"),
        ["an envelope without an event"] = Refused("""{"body":{"action":"ping","requestId":7}}""", BadRequest, "ping", "7"),
        ["an event that is a number"] = Refused("""{"event":1,"body":{"action":"ping","requestId":7}}""", BadRequest, "ping", "7"),
        ["an unknown action"] = Refused(Request("fly", "7", "{}"), "unknown_action", "fly", "7"),
        ["an action of another case"] = Refused(Request("PING", "\"p-7\"", "{}"), "unknown_action", "PING", "\"p-7\""),
        ["parameters that are a string"] = Refused(Request("register", "7", "\"name=probe\""), BadRequest, "register", "7"),
        ["parameters that are an array"] = Refused(Request("register", "7", """[{"information":{}}]"""), BadRequest, "register", "7"),
        ["parameters that are null"] = Refused(Request("register", "7", "null"), BadRequest, "register", "7"),
        ["a requestId that is an object"] = Refused("""{"event":"client.to.instance","body":{"action":"ping","requestId":{"id":7}}}""", BadRequest, "ping"),
        ["a requestId that is an array"] = Refused("""{"event":"client.to.instance","body":{"action":"ping","requestId":[7]}}""", BadRequest, "ping"),
        ["a requestId that is true"] = Refused("""{"event":"client.to.instance","body":{"action":"register","requestId":true,"parameters":{"information":{}}}}""", BadRequest, "register"),

        // Duplicate property names: exact duplicates fail the parse, case variants are ambiguous.
        ["the event given twice"] = Refused("""{"event":"client.to.instance","event":"client.to.instance","body":{"action":"ping","requestId":7}}""", BadRequest),
        ["the action given twice"] = Refused("""{"event":"client.to.instance","body":{"action":"ping","action":"register","requestId":7}}""", BadRequest),
        ["the body given twice in two cases"] = Refused("""{"event":"client.to.instance","body":{"action":"ping","requestId":7},"Body":{"action":"register"}}""", BadRequest),
        ["the action given twice in two cases"] = Refused("""{"event":"client.to.instance","body":{"action":"ping","Action":"register","requestId":7}}""", BadRequest, requestId: "7"),
        ["the token given twice in two cases"] = Refused(t => Request("login", "7", $$$"""{"token":"{{{t}}}","Token":"{{{t}}}"}"""), BadRequest, "login", "7"),
        ["the token given twice, once as an escaped name in another case"] = Refused(t => Request("login", "7", $$$"""{"token":"{{{t}}}","\u0054oken":"{{{t}}}"}"""), BadRequest, "login", "7"),
        ["a key given twice inside information"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":{"name":"a","name":"b"}}"""), BadRequest),
        ["the name given twice in two cases inside information"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":{"name":"a","Name":"b"}}"""), BadRequest, "update", "7"),

        // Information, on register and on an update of a registered client.
        ["register without information"] = Refused(Request("register", "7", "{}"), BadRequest, "register", "7"),
        ["register without parameters"] = Refused("""{"event":"client.to.instance","body":{"action":"register","requestId":7}}""", BadRequest, "register", "7"),
        ["information that is a string"] = Refused(Request("register", "7", """{"information":"probe-7"}"""), BadRequest, "register", "7"),
        ["information that is an array"] = Refused(Request("register", "7", """{"information":[{"name":"probe-7"}]}"""), BadRequest, "register", "7"),
        ["information that is a number"] = Refused(Request("register", "7", """{"information":7}"""), BadRequest, "register", "7"),
        ["information that is null"] = Refused(Request("register", "7", """{"information":null}"""), BadRequest, "register", "7"),
        ["an update without information"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}"}"""), BadRequest, "update", "7"),
        ["an update with information that is a string"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":"changed"}"""), BadRequest, "update", "7"),
        ["an update with information that is an array"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":[{"name":"changed"}]}"""), BadRequest, "update", "7"),
        ["an update with information that is a number"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":7}"""), BadRequest, "update", "7"),
        ["information over the 8 KiB limit"] = Refused(Request("register", "7", $$$"""{"information":{"name":"big","pad":"{{{Oversized}}}"}}"""), TooLarge, "register", "7"),
        ["an update with information over the 8 KiB limit"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":{"pad":"{{{Oversized}}}"}}"""), TooLarge, "update", "7"),
        ["information with 10,000 keys"] = Refused(Request("register", "7", """{"information":""" + ManyKeys(10_000) + "}"), TooLarge, "register", "7"),
        ["an information name that is a number"] = Refused(Request("register", "7", """{"information":{"name":7}}"""), BadRequest, "register", "7"),
        ["an information name that is an object"] = Refused(Request("register", "7", """{"information":{"name":{"first":"probe"}}}"""), BadRequest, "register", "7"),
        ["an information location that is an array"] = Refused(Request("register", "7", """{"information":{"location":["Turin"]}}"""), BadRequest, "register", "7"),
        ["an information name over 256 characters"] = Refused(Request("register", "7", $$$"""{"information":{"name":"{{{LongName}}}"}}"""), TooLarge, "register", "7"),
        ["an information location over 256 characters"] = Refused(Request("register", "7", $$$"""{"information":{"location":"{{{LongName}}}"}}"""), TooLarge, "register", "7"),
        ["an update with an information name over 256 characters"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":{"name":"{{{LongName}}}"}}"""), TooLarge, "update", "7"),
        ["an update with an information name that is a number"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":{"name":7}}"""), BadRequest, "update", "7"),

        // Tokens.
        ["a login without a token"] = Refused(Request("login", "7", "{}"), BadRequest, "login", "7"),
        ["a login with a token that is a number"] = Refused(Request("login", "7", """{"token":12345}"""), BadRequest, "login", "7"),
        ["a login with a token that is an object"] = Refused(Request("login", "7", """{"token":{"value":"abc"}}"""), BadRequest, "login", "7"),
        ["a login with a token that is null"] = Refused(Request("login", "7", """{"token":null}"""), BadRequest, "login", "7"),
        ["a login with an empty token"] = Refused(Request("login", "7", """{"token":""}"""), BadRequest, "login", "7"),
        ["a login with a well-formed token never registered"] = Refused(Request("login", "7", $$$"""{"token":"{{{NeverRegisteredToken}}}"}"""), InvalidToken, "login", "7"),
        ["a login with a malformed token"] = Refused(Request("login", "7", """{"token":"not a token"}"""), InvalidToken, "login", "7"),
        ["a login with 43 characters that are not base64url"] = Refused(Request("login", "7", $$$"""{"token":"{{{new string('!', 43)}}}"}"""), InvalidToken, "login", "7"),
        ["a login with the token of a client plus one character"] = Refused(t => Request("login", "7", $$$"""{"token":"{{{t}}}A"}"""), InvalidToken, "login", "7"),
        ["an update with a well-formed token never registered"] = Refused(Request("update", "7", $$$"""{"token":"{{{NeverRegisteredToken}}}","information":{"name":"x"}}"""), InvalidToken, "update", "7"),
        ["an update with a token that is a number"] = Refused(Request("update", "7", """{"token":42,"information":{"name":"x"}}"""), BadRequest, "update", "7"),
        ["an update with a token that is an object"] = Refused(Request("update", "7", """{"token":{},"information":{"name":"x"}}"""), BadRequest, "update", "7"),
        ["an update with an empty token"] = Refused(Request("update", "7", """{"token":"","information":{"name":"x"}}"""), BadRequest, "update", "7"),

        // Escapes that are valid JSON but no valid string: a lone UTF-16 surrogate.
        ["a lone surrogate escape in the action"] = Refused("""{"event":"client.to.instance","body":{"action":"\uD800","requestId":7}}""", BadRequest, requestId: "7"),
        ["a lone surrogate escape in the event"] = Refused("""{"event":"\uDC00","body":{"action":"ping","requestId":7}}""", BadRequest, "ping", "7"),
        ["a lone surrogate escape in a property name of the envelope"] = Refused("""{"\uD800":1,"event":"client.to.instance","body":{"action":"ping","requestId":7}}""", BadRequest),
        ["a lone surrogate escape in the token"] = Refused(Request("login", "7", """{"token":"\uD800"}"""), BadRequest, "login", "7"),
        ["a lone surrogate escape in a key inside information"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":{"\uDBFF":"x"}}"""), BadRequest),
        ["a lone surrogate escape in an information name"] = Refused(t => Request("update", "7", $$$"""{"token":"{{{t}}}","information":{"name":"\uD800"}}"""), BadRequest, "update", "7"),
    };

    public static TheoryData<string> BadFrames => new(Frames.Keys);

    [Theory]
    [MemberData(nameof(BadFrames))]
    public async Task BadInputGetsItsErrorKeepsTheSocketAndChangesNothing(string input)
    {
        var bad = Frames[input];
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var (token, _) = await client.RegisterAsync(new { name = "bystander", location = "Turin" });
        var stored = fixture.Database.Snapshot();

        var frame = bad.Frame(token);
        Assert.True(frame.Length < GatewayFixture.MaxMessageBytes, "The case must test its content, not the frame cap.");
        await client.SendAsync(frame, bad.Type);

        AssertError(await client.ReceiveAsync(), bad.Code, bad.Request, bad.RequestId);
        await AssertServesAsync(client);
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    /// <summary>
    /// RFC 6455 (8.1) makes invalid UTF-8 in a text message fail the connection, and the .NET WebSocket does
    /// so with 1007 before the server sees a byte: no error reply can come. What the server owns is the rest:
    /// only that socket goes, nothing is stored, and everyone else is served.
    /// </summary>
    [Fact]
    public async Task InvalidUtf8InATextFrameFailsOnlyThatSocketWithInvalidPayloadData()
    {
        await using var bystander = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var stored = fixture.Database.Snapshot();
        byte[] frame = [.. """{"event":"client.to.instance","body":{"action":"register","requestId":7,"parameters":{"information":{"name":"x"""u8, 0xc3, 0x28, 0xff, .. "\"}}}}"u8];

        // Several sockets, since the close frame is lost to a reset only when the server lets go of the
        // connection before the peer has read it: a race that one socket on an idle machine rarely loses.
        for (var socket = 0; socket < 25; socket++)
        {
            await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);

            await client.SendAsync(frame, WebSocketMessageType.Text);

            Assert.Null(await client.ReceiveTextAsync());
            Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, client.Socket.CloseStatus);
        }

        await AssertServesAsync(bystander);
        await AssertANewSocketIsServedAsync();
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    [Fact]
    public async Task AFrameOverTheCapGetsTooLargeThenACloseWithMessageTooBig()
    {
        var stored = fixture.Database.Snapshot();
        await using (var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri))
        {
            var frame = Encoding.UTF8.GetBytes(Request("register", "7", $$$"""{"information":{"pad":"{{{new string('x', GatewayFixture.MaxMessageBytes)}}}"}}"""));

            await client.SendAsync(frame, WebSocketMessageType.Text);

            AssertError(await client.ReceiveAsync(), TooLarge, null, null);
            Assert.Null(await client.ReceiveTextAsync());
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, client.Socket.CloseStatus);
        }

        await AssertANewSocketIsServedAsync();
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    [Fact]
    public async Task AMessageOverTheCapSentInSmallFragmentsIsRefusedLikeOneFrame()
    {
        var stored = fixture.Database.Snapshot();
        await using (var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri))
        {
            var chunk = Encoding.UTF8.GetBytes(new string(' ', 4096));
            await client.SendAsync(Encoding.UTF8.GetBytes("{\"event\":\"client.to.instance\","), WebSocketMessageType.Text, endOfMessage: false);
            for (var sent = 0; sent <= GatewayFixture.MaxMessageBytes; sent += chunk.Length)
            {
                await client.SendAsync(chunk, WebSocketMessageType.Text, endOfMessage: false);
            }

            AssertError(await client.ReceiveAsync(), TooLarge, null, null);
            Assert.Null(await client.ReceiveTextAsync());
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, client.Socket.CloseStatus);
        }

        await AssertANewSocketIsServedAsync();
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    [Fact]
    public async Task AThousandPipelinedRequestsAreAnsweredInOrderWithTheirRequestIds()
    {
        const int count = 1000;
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var stored = fixture.Database.Snapshot();

        // Replies are read while requests are still being written, so back-pressure cannot deadlock the two.
        var sending = Task.Run(
            async () =>
            {
                for (var i = 0; i < count; i++)
                {
                    await client.SendTextAsync(Pipelined(i));
                }
            },
            TestContext.Current.CancellationToken);
        var receiving = ReceiveAsync(client, count);
        await Task.WhenAll(sending, receiving);

        var replies = await receiving;
        for (var i = 0; i < count; i++)
        {
            var requestId = i.ToString(CultureInfo.InvariantCulture);
            switch (i % 4)
            {
                case 0:
                    Assert.Equal("pinged", replies[i].Action());
                    Assert.Equal(requestId, replies[i].GetProperty("requestId").GetRawText());
                    break;
                case 1:
                    AssertError(replies[i], "unknown_action", "fly", requestId);
                    break;
                case 2:
                    AssertError(replies[i], BadRequest, "ping", requestId);
                    break;
                default:
                    AssertError(replies[i], BadRequest, "login", requestId);
                    break;
            }
        }

        await AssertServesAsync(client);
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    [Fact]
    public async Task AnEnvelopeSplitIntoFiftyFragmentsGetsTheNormalReply()
    {
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var stored = fixture.Database.Snapshot();

        // Fragment borders fall inside multi-byte characters too; an empty first fragment is legal as well.
        const string requestId = "\"Città-é-€-𝄞\"";
        var frame = Encoding.UTF8.GetBytes(Ping(requestId));
        await client.SendAsync([], WebSocketMessageType.Text, endOfMessage: false);
        const int fragments = 50;
        for (var i = 0; i < fragments; i++)
        {
            var start = frame.Length * i / fragments;
            var end = frame.Length * (i + 1) / fragments;
            await client.SendAsync(frame[start..end], WebSocketMessageType.Text, endOfMessage: i == fragments - 1);
        }

        var reply = await client.ReceiveAsync();
        Assert.Equal("pinged", reply.Action());
        Assert.Equal(requestId, reply.GetProperty("requestId").GetRawText());
        await AssertServesAsync(client);
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    [Fact]
    public async Task AClosingHandshakeInTheMiddleOfAMessageClosesOnlyThatSocket()
    {
        await using var bystander = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var stored = fixture.Database.Snapshot();
        await using (var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri))
        {
            var frame = Encoding.UTF8.GetBytes(Request("register", "7", """{"information":{"name":"half"}}"""));
            await client.SendAsync(frame[..(frame.Length / 2)], WebSocketMessageType.Text, endOfMessage: false);

            await client.CloseAsync();

            Assert.Equal(WebSocketState.Closed, client.Socket.State);
        }

        await AssertServesAsync(bystander);
        await AssertANewSocketIsServedAsync();
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    [Fact]
    public async Task ASocketDroppedInTheMiddleOfAMessageClosesOnlyThatSocket()
    {
        await using var bystander = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var stored = fixture.Database.Snapshot();
        await using (var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri))
        {
            var frame = Encoding.UTF8.GetBytes(Request("register", "7", """{"information":{"name":"half"}}"""));
            await client.SendAsync(frame[..(frame.Length / 2)], WebSocketMessageType.Text, endOfMessage: false);

            client.Socket.Abort();
        }

        await AssertServesAsync(bystander);
        await AssertANewSocketIsServedAsync();
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    [Fact]
    public async Task AFloodBeyondTheRateLimitIsRefusedAndTheSocketWorksAgainAfterASecond()
    {
        const int burst = 10;
        const int flood = 200;
        using var database = new TempDatabase();

        // The budget's clock stands still until the test moves it: the burst, and nothing more, gets through.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:RequestsPerSecond"] = "5",
            ["Protocol:RequestBurst"] = burst.ToString(CultureInfo.InvariantCulture),

            // This flood earns more rate_limited answers than a socket may get before it is closed
            // (RateViolationTests); here the socket must live to show that the budget refills.
            ["Protocol:MaxRateLimitedBeforeClose"] = flood.ToString(CultureInfo.InvariantCulture),
        }, time);
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var stored = database.Snapshot();

        var sending = Task.Run(
            async () =>
            {
                for (var i = 0; i < flood; i++)
                {
                    await client.SendTextAsync(FloodFrame(i));
                }
            },
            TestContext.Current.CancellationToken);
        var receiving = ReceiveAsync(client, flood);
        await Task.WhenAll(sending, receiving);

        var replies = await receiving;
        for (var i = 0; i < flood; i++)
        {
            // Only the burst gets through while the clock stands still; a refusal echoes what it could read.
            var (action, requestId) = (i % 10) switch
            {
                8 => ((string?)null, (string?)null),
                9 => ("ping", null),
                _ => ("ping", i.ToString(CultureInfo.InvariantCulture)),
            };
            if (i >= burst)
            {
                AssertError(replies[i], "rate_limited", action, requestId);
            }
            else if (action is null)
            {
                AssertError(replies[i], BadRequest, null, null);
            }
            else
            {
                Assert.Equal("pinged", replies[i].Action());
                Assert.Equal(requestId, replies[i].TryGetProperty("requestId", out var id) ? id.GetRawText() : null);
            }
        }

        Assert.Contains(replies, r => r.ErrorCode() == "rate_limited");

        Assert.Equal("rate_limited", (await client.RequestAsync("ping")).ErrorCode());

        // A second later the bucket has refilled.
        time.Advance(TimeSpan.FromSeconds(1));
        await AssertServesAsync(client);
        Assert.Equal(stored, database.Snapshot());
    }

    private static void AssertError(JsonElement reply, string code, string? request, string? requestId)
    {
        Assert.Equal("error", reply.Action());
        var parameters = reply.Parameters();
        Assert.Equal(code, parameters.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(parameters.GetProperty("message").GetString()));
        Assert.Equal(request, parameters.TryGetProperty("request", out var action) ? action.GetString() : null);
        Assert.Equal(requestId, reply.TryGetProperty("requestId", out var id) ? id.GetRawText() : null);
    }

    private static async Task AssertServesAsync(WsClient client) =>
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());

    private async Task AssertANewSocketIsServedAsync()
    {
        await using var fresh = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        await AssertServesAsync(fresh);
    }

    private static async Task<JsonElement[]> ReceiveAsync(WsClient client, int count)
    {
        var replies = new JsonElement[count];
        for (var i = 0; i < count; i++)
        {
            replies[i] = await client.ReceiveAsync();
        }

        return replies;
    }

    private static string Pipelined(int i)
    {
        var id = i.ToString(CultureInfo.InvariantCulture);
        return (i % 4) switch
        {
            0 => Ping(id),
            1 => Request("fly", id, "{}"),
            2 => $$$"""{"event":"instance.to.client","body":{"action":"ping","requestId":{{{id}}}}}""",
            _ => Request("login", id, """{"token":7}"""),
        };
    }

    /// <summary>Pings with ids, pings without one, and frames that are not JSON.</summary>
    private static string FloodFrame(int i) => (i % 10) switch
    {
        8 => "not json",
        9 => """{"event":"client.to.instance","body":{"action":"ping"}}""",
        _ => Ping(i.ToString(CultureInfo.InvariantCulture)),
    };

    private static string Ping(string requestId) =>
        $$$"""{"event":"client.to.instance","body":{"action":"ping","requestId":{{{requestId}}}}}""";

    private static string Request(string action, string requestId, string parameters) =>
        $$$"""{"event":"client.to.instance","body":{"action":"{{{action}}}","requestId":{{{requestId}}},"parameters":{{{parameters}}}}}""";

    private static string Nested(int depth) => string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "0" + new string('}', depth);

    /// <summary>An object of <paramref name="count"/> short keys: far over the information limit, under the frame cap.</summary>
    private static string ManyKeys(int count) =>
        "{" + string.Join(',', Enumerable.Range(0, count).Select(i => $"\"{i:x}\":0")) + "}";

    private static BadFrame Refused(string json, string code, string? request = null, string? requestId = null) =>
        new(_ => Encoding.UTF8.GetBytes(json), code, request, requestId);

    private static BadFrame Refused(Func<string, string> json, string code, string? request = null, string? requestId = null) =>
        new(token => Encoding.UTF8.GetBytes(json(token)), code, request, requestId);

    private sealed record BadFrame(Func<string, byte[]> Frame, string Code, string? Request, string? RequestId, WebSocketMessageType Type = WebSocketMessageType.Text);
}
