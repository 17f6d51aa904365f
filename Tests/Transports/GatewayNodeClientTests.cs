using Tests.Infrastructure;
using Tests.SocketIo;

namespace Tests.Transports;

/// <summary>A gateway on the real clock whose clients may send to each other, for the npm clients.</summary>
public sealed class GatewayNodeFixture : IAsyncLifetime
{
    public TempDatabase Database { get; } = new();

    public GatewayServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Server = await GatewayServer.StartAsync(Database.Path, new Dictionary<string, string> { ["Protocol:ClientSend"] = "any" });

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Database.Dispose();
    }
}

/// <summary>
/// The npm Socket.IO clients against the gateway itself (Tests/SocketIo/node/gateway.js): each registers (one request
/// written to the specification, without a request id or an acknowledgement), logs in with a queued response waiting,
/// updates, receives a live push, acknowledges in ack mode, gets errors without losing its socket, and sees a takeover
/// from Socket.IO to <c>/ws</c> and back.
/// </summary>
public sealed class GatewayNodeClientTests(GatewayNodeFixture fixture) : IClassFixture<GatewayNodeFixture>
{
    [Fact]
    public Task TheV4ClientOverWebSocketOnlyIsAFullClientOfTheGateway() => NodeScenario.RunScriptAsync("gateway.js", "v4-websocket", fixture.Server.HttpUri);

    [Fact]
    public Task TheV4ClientOverPollingOnlyIsAFullClientOfTheGatewayAndGetsLivePushesOnPolling() => NodeScenario.RunScriptAsync("gateway.js", "v4-polling", fixture.Server.HttpUri);

    [Fact]
    public Task TheV4ClientUpgradingFromPollingIsAFullClientOfTheGateway() => NodeScenario.RunScriptAsync("gateway.js", "v4-upgrade", fixture.Server.HttpUri);

    [Fact]
    public Task TheV2ClientOnEngineIoV3IsAFullClientOfTheGateway() => NodeScenario.RunScriptAsync("gateway.js", "v2-default", fixture.Server.HttpUri);
}
