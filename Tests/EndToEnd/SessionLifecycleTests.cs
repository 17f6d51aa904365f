using System.Net;
using System.Net.WebSockets;
using Microsoft.Extensions.Time.Testing;
using Tests.ClientLibrary;
using Tests.Infrastructure;

namespace Tests.EndToEnd;

/// <summary>Behaviour that needs a server of its own: other limits, a second frontend, a silo going away.</summary>
public sealed class SessionLifecycleTests
{
    [Fact]
    public async Task AFullQueueRefusesTheSenderAndKeepsWhatItHas()
    {
        var ct = TestContext.Current.CancellationToken;
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["ClientStore:MaxQueuedResponses"] = "3",
            ["ClientStore:MaxQueuedPerSender"] = "3",
            ["ClientStore:ReservedForBackEnds"] = "0",
            ["Protocol:ClientSend"] = "any",
        });
        await using var client = await Clients.ConnectAsync(server.WebSocketUri);
        var sender = await client.RegisterAsync(new { name = "sender" }, ct);
        var full = await client.RegisterAsync(new { name = "full" }, ct);

        for (var i = 0; i < 3; i++)
        {
            await client.SendAsync(sender.Token, full.Id, i, ct);
        }

        await Assert.ThrowsAsync<ClientManagement.Client.QueueFullException>(() => client.SendAsync(sender.Token, full.Id, 3, ct));
        using var api = new ApiClient(server.HttpUri);
        Assert.Equal(HttpStatusCode.Conflict, (await api.PostResponseAsync(full.Id, "4")).Status);

        await using var recipient = await Clients.ConnectAsync(server.WebSocketUri);
        await recipient.LoginAsync(full.Token, cancellationToken: ct);
        Assert.Equal([0, 1, 2], (await recipient.TakeAsync(3)).Select(r => r.Payload.GetInt32()));
    }

    [Fact]
    public async Task AnIdleSocketIsClosedAndItsClientGoesOffline()
    {
        using var database = new TempDatabase();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:KeepAliveTimeout"] = "00:01:00",
            ["Protocol:CloseTimeout"] = "00:00:05",
        }, time);
        await using var idle = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, id) = await idle.RegisterAsync(new { name = "sleepy" });
        await idle.RequestAsync("login", new { token });

        // Nothing arrives for a whole keep-alive period; then the close handshake's deadline passes as well.
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Null(await idle.ReceiveTextAsync());
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, idle.Socket.CloseStatus);

        using var api = new ApiClient(server.HttpUri);
        // The mailbox hears of the end first and the directory right after it: each view is awaited on its own.
        await WaitUntilAsync(async () => !(await api.GetAsync($"/api/clients/{id}")).Body.GetProperty("online").GetBoolean());
        await WaitUntilAsync(async () => !(await api.GetAsync("/api/online")).Body.GetProperty("clients").EnumerateArray().Any(e => e.GetInt32() == id));
        var (_, sent) = await api.PostResponseAsync(id, "1");
        Assert.Equal("queued", sent.GetProperty("delivered").GetString());
    }

    [Fact]
    public async Task TwoFrontendsInOneClusterDeliverToEachOthersClientsAndSurviveOneDying()
    {
        using var database = new TempDatabase();
        var settings = new Dictionary<string, string> { ["Protocol:SessionRenewInterval"] = "00:00:00.500", ["Protocol:ClientSend"] = "any" };
        var a = await GatewayServer.StartAsync(database.Path, settings);
        try
        {
            await using var b = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>(settings) { ["Cluster:PrimarySiloPort"] = a.SiloPort.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            await using var onB = await WsClient.ConnectAsync(b.WebSocketUri);
            var (senderToken, _) = await onB.RegisterAsync(new { name = "sender on B" });

            await using var onA = await WsClient.ConnectAsync(a.WebSocketUri);
            var (token, id) = await onA.RegisterAsync(new { name = "recipient on A" });
            await onA.RequestAsync("login", new { token });

            var live = await onB.RequestAsync("send", new { token = senderToken, to = id, payload = "across" });
            Assert.Equal("online", live.Parameters().GetProperty("delivered").GetString());
            Assert.Equal("\"across\"", (await onA.NextPushAsync()).Parameters().GetProperty("payload").GetRawText());

            await a.DisposeAsync();

            // Until the cluster has noticed, a send may answer 'unavailable'; a retry is what a client does.
            var queued = await RetryWhileUnavailableAsync(() => onB.RequestAsync("send", new { token = senderToken, to = id, payload = "after A died" }));
            Assert.Equal("queued", queued.Parameters().GetProperty("delivered").GetString());

            await using var back = await WsClient.ConnectAsync(b.WebSocketUri);
            var queue = (await back.RequestAsync("login", new { token })).Parameters().GetProperty("queue");
            Assert.Equal(["\"after A died\""], queue.EnumerateArray().Select(r => r.GetProperty("payload").GetRawText()));
        }
        finally
        {
            await a.DisposeAsync();
        }
    }

    [Fact]
    public async Task ASiloLeavingInTheMiddleOfTrafficLosesNoQueuedResponse()
    {
        using var database = new TempDatabase();
        var a = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string> { ["Protocol:ClientSend"] = "any" });
        try
        {
            await using var b = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
            {
                ["Cluster:PrimarySiloPort"] = a.SiloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Protocol:ClientSend"] = "any",
            });
            await using var client = await WsClient.ConnectAsync(b.WebSocketUri);
            var (senderToken, _) = await client.RegisterAsync(new { name = "sender" });
            var recipients = new List<(string Token, int Id)>();
            for (var i = 0; i < 10; i++)
            {
                recipients.Add(await client.RegisterAsync(new { name = $"r{i}" }));
            }

            // Traffic through B while A (and the grains it hosts) goes away half-way.
            var accepted = recipients.ToDictionary(r => r.Id, _ => new List<long>());
            var unanswered = recipients.ToDictionary(r => r.Id, _ => 0);
            Task? stopping = null;
            for (var round = 0; round < 20; round++)
            {
                if (round == 10)
                {
                    stopping = a.StopAsync();
                }

                foreach (var (_, id) in recipients)
                {
                    var reply = await client.RequestAsync("send", new { token = senderToken, to = id, payload = round });
                    if (reply.Action() == "sent")
                    {
                        accepted[id].Add(reply.Parameters().GetProperty("seq").GetInt64());
                    }
                    else
                    {
                        Assert.Equal("unavailable", reply.ErrorCode());
                        unanswered[id]++;
                    }
                }
            }

            await stopping!;
            foreach (var (token, id) in recipients)
            {
                await using var recipient = await WsClient.ConnectAsync(b.WebSocketUri);
                var login = await RetryWhileUnavailableAsync(() => recipient.RequestAsync("login", new { token }));
                var queue = login.Parameters().GetProperty("queue").EnumerateArray().Select(r => r.GetProperty("seq").GetInt64()).ToArray();

                // Every accepted response is there, in order. A send cut off by the silo going away is
                // answered 'unavailable' though it may have been stored just before: at most those
                // come on top, which is why a client retries and the seq tells it apart.
                Assert.Empty(accepted[id].Except(queue));
                Assert.Equal(queue.Order(), queue);
                Assert.InRange(queue.Length - accepted[id].Count, 0, unanswered[id]);
            }

            Assert.True(accepted.Values.Sum(v => v.Count) >= 100);
        }
        finally
        {
            await a.DisposeAsync();
        }
    }

    private static async Task<System.Text.Json.JsonElement> RetryWhileUnavailableAsync(Func<Task<System.Text.Json.JsonElement>> request)
    {
        for (var attempt = 0; attempt < 60; attempt++)
        {
            var reply = await request();
            if (reply.ErrorCode() != "unavailable")
            {
                return reply;
            }

            await Task.Delay(500, TestContext.Current.CancellationToken);
        }

        Assert.Fail("Still unavailable after 30 s.");
        return default;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.Fail("The condition never held.");
    }
}
