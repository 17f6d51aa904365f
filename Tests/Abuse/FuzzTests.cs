using System.Net.WebSockets;
using System.Text;
using System.Text.Unicode;
using CsCheck;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;
using static Tests.Infrastructure.Reply;
using WebSocketFrontend.Protocol;
using WebSocketFrontend.Sessions;
using Reply = WebSocketFrontend.Sessions.Reply;

namespace Tests.Abuse;

/// <summary>
/// Property tests of the parser and the dispatcher over generated and mutated frames (<see cref="FuzzFrames"/>):
/// nothing throws, every reply is a valid envelope, and a refused request changes nothing.
/// </summary>
public sealed class FuzzTests
{
    /// <summary>Frames driven through the parser and the dispatcher in process, per run.</summary>
    private const int InProcessFrames = 100_000;

    /// <summary>Frames sent over a real socket to the real server, per run.</summary>
    private const int SocketFrames = 1_000;

    [Fact]
    public async Task TheParserAndTheDispatcherAnswerEveryGeneratedFrameWithAValidEnvelope()
    {
        var grains = new FakeGrains();
        var pool = Enumerable.Range(0, 16).Select(i => grains.Seed($"pool-{i}")).ToArray();

        // Sends and the online list open, so that the dispatcher reaches every grain call it can make.
        var options = Options.Create(new ProtocolOptions { ClientSend = ClientSendPolicy.Any, ClientsMayListOnline = true });
        var (handler, services, _) = grains.Frontend(options, new FakeTimeProvider());
        using var socket = WebSocket.CreateFromStream(Stream.Null, new WebSocketCreationOptions { IsServer = true });
        using var session = new ClientSession(new WebSocketTransport(socket, services), services);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);

        // One thread: the session and the fake grains are what one receive loop sees, one request at a time.
        await FuzzFrames.Frames([.. pool.Select(p => p.Token)], [.. pool.Select(p => p.Id)]).SampleAsync(
            async frame =>
            {
                var before = grains.Version;
                Reply reply;
                if (RequestParser.TryParse(frame, out var request, out var error))
                {
                    using (request)
                    {
                        reply = await handler.HandleAsync(session, request!, TestContext.Current.CancellationToken);
                    }

                    session.EndLogin();
                }
                else
                {
                    reply = session.Replies.Error(error!.Code, error.Message, error.Action, error.RequestIdJson);
                }

                var body = StrictJson.Envelope(Encoding.UTF8.GetString(reply.Frame));
                var outcome = body.ErrorCode() ?? body.Action();
                counts[outcome] = counts.GetValueOrDefault(outcome) + 1;

                // The fakes never fail: 'unavailable' here would be an exception the dispatcher did not expect.
                Assert.NotEqual("unavailable", outcome);
                if (body.Action() == "error")
                {
                    Assert.Equal(before, grains.Version);
                }

                foreach (var next in reply.FollowedBy ?? [])
                {
                    Assert.Equal("response", StrictJson.Envelope(Encoding.UTF8.GetString(next.Frame)).Action());
                }

                if (reply.AfterWritten is { } written)
                {
                    await written();
                }

                if (outcome is "deleted" or "rotated")
                {
                    // The pool's clients come back with their tokens, so later frames still reach every action.
                    foreach (var (token, id) in pool)
                    {
                        grains.Restore(token, id);
                    }
                }
            },
            iter: InProcessFrames,
            threads: 1,
            print: frame => Encoding.UTF8.GetString(frame));

        // The generator reaches the actions themselves, not only the parser's refusals. How often varies with the
        // seed (a 'sent' needs a valid token, a known recipient and a payload in one frame: 99-147 times in 100,000
        // across runs), so the bound asks that each is reached many times, not a share of them.
        Assert.All(["registered", "logged", "updated", "sent", "pinged", "bad_request", "invalid_token", "unknown_action"], o =>
            Assert.True(counts.GetValueOrDefault(o) > 20, $"{o}: {counts.GetValueOrDefault(o)} of {InProcessFrames}; {string.Join(", ", counts.Select(c => $"{c.Key}={c.Value}"))}"));
    }

    [Fact]
    public async Task TheServerAnswersGeneratedFramesOverARealSocketAndRefusalsChangeNoRow()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:RequestBurst"] = "100000",
        });
        var pool = new List<(string Token, int Id)>();
        await using (var setup = await WsClient.ConnectAsync(server.WebSocketUri))
        {
            for (var i = 0; i < 4; i++)
            {
                pool.Add(await setup.RegisterAsync(new { name = $"pool-{i}" }));
            }
        }

        var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var previous = "";
        var previousFrame = "";
        try
        {
            await FuzzFrames.Frames([.. pool.Select(p => p.Token)], [.. pool.Select(p => p.Id)]).SampleAsync(
                async frame =>
                {
                    var before = database.Snapshot();
                    if (client.Socket.State != WebSocketState.Open)
                    {
                        Assert.Fail($"The socket is {client.Socket.State} ({client.Socket.CloseStatus}) after: {previousFrame}");
                    }

                    previousFrame = Encoding.UTF8.GetString(frame);
                    await client.SendAsync(frame, WebSocketMessageType.Text);

                    // A ping behind every frame marks where its answer (and the pushes it caused) end. Text that is
                    // no UTF-8 closes the socket (1007, as RFC 6455 wants), and the ping may find it closed already.
                    var utf8 = Utf8.IsValid(frame);
                    try
                    {
                        await client.SendTextAsync(WsClient.Envelope("ping", requestId: "sync"));
                    }
                    catch (WebSocketException) when (!utf8)
                    {
                    }

                    var answer = "";
                    var refused = false;
                    for (var i = 0; i < 2_000; i++)
                    {
                        string? text;
                        try
                        {
                            text = await client.ReceiveTextAsync();
                        }
                        catch (WebSocketException) when (!utf8)
                        {
                            text = null;
                        }

                        if (text is null)
                        {
                            // Only text that is no UTF-8 closes the socket; everything else is answered.
                            Assert.False(utf8, $"closed with {client.Socket.CloseStatus}");
                            Assert.NotEqual(WebSocketCloseStatus.PolicyViolation, client.Socket.CloseStatus);
                            await client.DisposeAsync();
                            client = await WsClient.ConnectAsync(server.WebSocketUri);
                            answer = "closed";
                            break;
                        }

                        var body = StrictJson.Envelope(text);
                        if (body.TryGetProperty("requestId", out var id) && id.ValueKind == System.Text.Json.JsonValueKind.String && id.GetString() == "sync" && body.Action() == "pinged")
                        {
                            break;
                        }

                        if (body.Action() != "response" && answer.Length == 0)
                        {
                            answer = body.ErrorCode() ?? body.Action();
                            refused = body.Action() == "error";
                        }
                    }

                    // A refusal changes no row; the responses a login before it delivered are removed after it, on their own.
                    if (refused && previous != "logged")
                    {
                        Assert.Equal(before, database.Snapshot());
                    }

                    previous = answer;
                },
                iter: SocketFrames,
                threads: 1,
                print: frame => Encoding.UTF8.GetString(frame));
        }
        finally
        {
            await client.DisposeAsync();
        }
    }
}
