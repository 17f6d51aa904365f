using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using Tests.Infrastructure;

namespace Tests.Faults;

/// <summary>
/// A push that a slow socket cannot take in time is either written or stored for later, never both:
/// each response reaches the client once, and the slow socket is closed with 1008.
/// </summary>
public sealed class SlowPushTests
{
    [Fact]
    public async Task ASocketThatStopsReadingGetsEachResponseOnceAndIsClosedWithPolicyViolation()
    {
        const int Responses = 65;
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            // The mailbox gives up on a push after a second; the close handshake may take a minute, so
            // the client reads the 1008 close frame rather than an abort.
            ["ClientStore:PushTimeout"] = "00:00:01",
            ["ClientStore:MaxQueuedBytes"] = (16 * 1024 * 1024).ToString(CultureInfo.InvariantCulture),

            // The outbox must hold a whole queue; this test is about the push deadline, not the byte bound.
            ["Protocol:OutboxBytes"] = (32 * 1024 * 1024).ToString(CultureInfo.InvariantCulture),
            ["Protocol:CloseTimeout"] = "00:01:00",
            ["Protocol:MaxPayloadBytes"] = (128 * 1024).ToString(CultureInfo.InvariantCulture),
        });
        await using var slow = await WsClient.ConnectWithSmallReceiveBufferAsync(server.WebSocketUri);
        var (token, id) = await slow.RegisterAsync(new { name = "slow" });
        Assert.Equal("logged", (await slow.RequestAsync("login", new { token })).Action());

        // The client stops reading; the sender goes on. Large payloads fill the socket's buffers quickly.
        using var api = new ApiClient(server.HttpUri);
        var payload = JsonSerializer.Serialize(new string('x', 64 * 1024));
        var sent = new List<long>();
        for (var i = 0; i < Responses; i++)
        {
            var (status, body) = await api.PostResponseAsync(id, payload);
            Assert.Equal(HttpStatusCode.Accepted, status);
            sent.Add(body.GetProperty("seq").GetInt64());
        }

        Assert.Equal(Responses, sent.Distinct().Count());
        var queued = await QueueLengthAsync(api, id);
        Assert.True(queued > 0, "every push reached the socket: the test did not make it slow");

        // Now it reads what the server wrote, up to the close.
        var received = new List<long>();
        for (var i = 0; i < Responses + 10; i++)
        {
            var text = await slow.ReceiveTextAsync();
            if (text is null)
            {
                break;
            }

            received.AddRange(Seqs(text));
        }

        Assert.Equal(WebSocketCloseStatus.PolicyViolation, slow.Socket.CloseStatus);

        // The rest waits for the next login.
        await using var again = await WsClient.ConnectAsync(server.WebSocketUri);
        var logged = await again.RequestAsync("login", new { token });
        received.AddRange(logged.Parameters().GetProperty("queue").EnumerateArray().Select(r => r.GetProperty("seq").GetInt64()));
        for (var i = 0; i < Responses && received.Count < Responses; i++)
        {
            received.AddRange(Seqs((await again.NextPushAsync()).GetRawText()));
        }

        Assert.Equal(received.Distinct().Count(), received.Count);
        Assert.Equal(sent.Order(), received.Order());
    }

    /// <summary>The seqs of the <c>response</c> frames in a message (none for other frames).</summary>
    private static IEnumerable<long> Seqs(string text)
    {
        using var document = JsonDocument.Parse(text);
        var body = document.RootElement.TryGetProperty("body", out var b) ? b : document.RootElement;
        return body.GetProperty("action").GetString() == "response"
            ? [body.GetProperty("parameters").GetProperty("seq").GetInt64()]
            : [];
    }

    private static async Task<int> QueueLengthAsync(ApiClient api, int id)
    {
        var (status, body) = await api.GetAsync($"/api/clients/{id}");
        Assert.Equal(HttpStatusCode.OK, status);
        return body.GetProperty("queueLength").GetInt32();
    }
}
