using System.Globalization;
using System.Net.WebSockets;
using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;

namespace Tests.Abuse;

/// <summary>
/// The attack: sockets that never log in were held until the 120 s idle close, enough to fill the
/// process's descriptors. A socket that does not register or log in within the deadline is closed.
/// </summary>
public sealed class AuthenticationTimeoutTests
{
    [Fact]
    public async Task ASocketThatNeverAuthenticatesIsClosedWithPolicyViolationAndOneThatDidStays()
    {
        using var database = new TempDatabase();
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T12:00:00Z", CultureInfo.InvariantCulture));
        await using var server = await GatewayServer.StartAsync(database.Path, time: clock);

        await using var idle = await WsClient.ConnectAsync(server.WebSocketUri);
        await using var guessing = await WsClient.ConnectAsync(server.WebSocketUri);
        await using var registered = await WsClient.ConnectAsync(server.WebSocketUri);

        // Each request also proves the server holds the session, so its deadline is running.
        Assert.Equal("pinged", (await idle.RequestAsync("ping")).Action());
        Assert.Equal("invalid_token", (await guessing.RequestAsync("login", new { token = TokenDigest.NewToken() })).ErrorCode());
        await registered.RegisterAsync(new { name = "device" });

        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal("pinged", (await idle.RequestAsync("ping")).Action());

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await idle.ReceiveTextAsync());
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, idle.Socket.CloseStatus);
        Assert.Null(await guessing.ReceiveTextAsync());
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, guessing.Socket.CloseStatus);

        clock.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal("pinged", (await registered.RequestAsync("ping")).Action());
    }
}
