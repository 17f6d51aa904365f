using System.Collections.Immutable;
using System.Text.Json;
using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.Runtime;
using Tests.Infrastructure;
using WebSocketFrontend.Sessions;

namespace Tests.EndToEnd;

/// <summary>
/// One login, its mailbox restarted under it (its silo died, or it was deactivated): within the login no seq
/// reaches the socket twice, and what it did not acknowledge comes again at the next login. Over real sockets,
/// on a gateway whose clock is a <see cref="FakeTimeProvider"/>, so that the session renewal comes when the
/// test moves the clock.
/// </summary>
public sealed class MailboxRestartTests
{
    // The default renewal interval: one step of the fake clock is one renewal round.
    private static readonly TimeSpan RenewInterval = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AnAckModeLoginWhoseMailboxRestartsGetsNoSeqTwiceAndTheNextLoginGetsWhatItDidNotAcknowledge()
    {
        await using var login = await AckLogin.StartAsync("acknowledging");
        var (clock, server, api, client, token, id, first) = login;

        // The new activation knows only the stored queue, where the unacknowledged first response still is.
        await DeactivateAllAsync(server);
        var second = await PostAsync(api, id, "2", "queued");

        // The renewal re-attaches the login and gets what waited: the second response, not the first again.
        clock.Advance(RenewInterval);
        Assert.Equal(second, SeqOf(await client.NextPushAsync()));
        var third = await PostAsync(api, id, "3", "online");
        Assert.Equal(third, SeqOf(await client.NextPushAsync()));

        await using var next = await WsClient.ConnectAsync(server.WebSocketUri);
        var logged = await next.RequestAsync("login", new { token, ack = true });
        Assert.Equal([first, second, third], logged.Parameters().GetProperty("queue").EnumerateArray().Select(r => r.GetProperty("seq").GetInt64()));
        Assert.Equal(third, (await next.RequestAsync("ack", new { upTo = third })).Parameters().GetProperty("upTo").GetInt64());

        await using var last = await WsClient.ConnectAsync(server.WebSocketUri);
        Assert.Empty((await last.RequestAsync("login", new { token, ack = true })).Parameters().GetProperty("queue").EnumerateArray());
    }

    [Fact]
    public async Task AnAcknowledgementBetweenAMailboxRestartAndTheNextRenewalIsTakenAndTheLoginStays()
    {
        await using var login = await AckLogin.StartAsync("acknowledging at once");
        var (_, server, api, client, token, id, first) = login;

        // The clock does not move: the new activation has not heard from the login when the acknowledgement comes.
        await DeactivateAllAsync(server);
        var acked = await client.RequestAsync("ack", new { upTo = first });
        Assert.Equal("acked", acked.Action());
        Assert.Equal(first, acked.Parameters().GetProperty("upTo").GetInt64());

        // Still logged in, and pushed to: the acknowledgement re-attached the login.
        var second = await PostAsync(api, id, "2", "online");
        Assert.Equal(second, SeqOf(await client.NextPushAsync()));

        await using var next = await WsClient.ConnectAsync(server.WebSocketUri);
        var logged = await next.RequestAsync("login", new { token, ack = true });
        Assert.Equal([second], logged.Parameters().GetProperty("queue").EnumerateArray().Select(r => r.GetProperty("seq").GetInt64()));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task APushOfASeqTheLoginAlreadyHadIsTakenAsDeliveredAndNotWrittenAgain(bool ackMode)
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, time: clock);
        using var api = new ApiClient(server.HttpUri);
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, id) = await client.RegisterAsync(new { name = "pushed twice" });
        var queued = await PostAsync(api, id, "\"while offline\"", "queued");
        var logged = await client.RequestAsync("login", new { token, ack = ackMode });
        Assert.Equal(queued, SeqOf(Assert.Single(logged.Parameters().GetProperty("queue").EnumerateArray())));
        var pushed = await PostAsync(api, id, "\"live\"", "online");
        Assert.Equal(pushed, SeqOf(await client.NextPushAsync()));

        // What an activation that lost its memory would push: the login's queue and its push, again.
        var session = Assert.Single(server.Services.GetRequiredService<SessionRegistry>().Sessions);
        var observer = server.Services.GetRequiredService<FrontendObserver>();
        ImmutableArray<PendingResponse> again =
        [
            new(queued, null, clock.GetUtcNow(), "\"while offline\""),
            new(pushed, null, clock.GetUtcNow(), "\"live\""),
        ];
        Assert.True(await observer.Deliver(session.Id, again, TimeSpan.FromSeconds(5)));
        Assert.Equal(pushed, session.DeliveredUpTo);

        var later = await PostAsync(api, id, "\"later\"", "online");
        Assert.Equal(later, SeqOf(await client.NextPushAsync()));
    }

    /// <summary>A gateway on a fake clock, and one client logged in with acknowledgements that has been pushed its first response.</summary>
    private sealed class AckLogin : IAsyncDisposable
    {
        private readonly TempDatabase _database;

        private AckLogin(FakeTimeProvider clock, TempDatabase database, GatewayServer server, ApiClient api, WsClient client)
        {
            (Clock, _database, Server, Api, Client) = (clock, database, server, api, client);
        }

        public FakeTimeProvider Clock { get; }

        public GatewayServer Server { get; }

        public ApiClient Api { get; }

        public WsClient Client { get; }

        public string Token { get; private set; } = "";

        public int Id { get; private set; }

        /// <summary>The seq of the first response, pushed to the login and not acknowledged.</summary>
        public long First { get; private set; }

        public static async Task<AckLogin> StartAsync(string name)
        {
            var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
            var database = new TempDatabase();
            var server = await GatewayServer.StartAsync(database.Path, time: clock);
            var login = new AckLogin(clock, database, server, new ApiClient(server.HttpUri), await WsClient.ConnectAsync(server.WebSocketUri));
            try
            {
                (login.Token, login.Id) = await login.Client.RegisterAsync(new { name });
                Assert.Empty((await login.Client.RequestAsync("login", new { token = login.Token, ack = true })).Parameters().GetProperty("queue").EnumerateArray());
                login.First = await PostAsync(login.Api, login.Id, "1", "online");
                Assert.Equal(login.First, SeqOf(await login.Client.NextPushAsync()));
                return login;
            }
            catch
            {
                await login.DisposeAsync();
                throw;
            }
        }

        public void Deconstruct(out FakeTimeProvider clock, out GatewayServer server, out ApiClient api, out WsClient client, out string token, out int id, out long first) =>
            (clock, server, api, client, token, id, first) = (Clock, Server, Api, Client, Token, Id, First);

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            Api.Dispose();
            await Server.DisposeAsync();
            _database.Dispose();
        }
    }

    private static async Task<long> PostAsync(ApiClient api, int id, string payload, string delivered)
    {
        var (_, body) = await api.PostResponseAsync(id, payload);
        Assert.Equal(delivered, body.GetProperty("delivered").GetString());
        return body.GetProperty("seq").GetInt64();
    }

    private static long SeqOf(JsonElement pushOrItem) =>
        (pushOrItem.TryGetProperty("parameters", out var parameters) ? parameters : pushOrItem).GetProperty("seq").GetInt64();

    private static Task DeactivateAllAsync(GatewayServer server) =>
        server.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0)
            .ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);
}
