using System.Net;
using Tests.Infrastructure;

namespace Tests.Abuse;

/// <summary>
/// The attack: an upgrade from <c>Origin: http://evil.example</c> (or <c>null</c>, or <c>file://</c>)
/// was accepted, so any web page could make its visitors' browsers act against the gateway.
/// </summary>
public sealed class OriginTests
{
    [Fact]
    public async Task ByDefaultForeignOriginsAreRefusedWith403AndDevicesAndSameOriginPagesAreLetIn()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);
        var self = server.HttpUri.GetLeftPart(UriPartial.Authority);

        foreach (var forged in new[] { "http://evil.example", "null", "file://", $"https://{server.HttpUri.Authority}", "http://127.0.0.1:1" })
        {
            await using var refused = await Upgrade.TryAsync(server.WebSocketUri, Origin(forged));
            Assert.True(refused.Status == HttpStatusCode.Forbidden, $"Origin '{forged}' got {refused.Status}");
        }

        await using var device = await Upgrade.TryAsync(server.WebSocketUri);
        await using var page = await Upgrade.TryAsync(server.WebSocketUri, Origin(self));
        Assert.True(device.Accepted);
        Assert.True(page.Accepted, $"the gateway's own origin {self} got {page.Status}");
    }

    [Fact]
    public async Task ListedOriginsAreLetInAndTheRestStayOut()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:AllowedOrigins:0"] = "https://app.example.com",
        });

        // As a browser sends it for a page at https://app.example.com/dashboard.
        await using var listed = await Upgrade.TryAsync(server.WebSocketUri, Origin("https://app.example.com"));
        await using var otherPort = await Upgrade.TryAsync(server.WebSocketUri, Origin("https://app.example.com:8443"));
        await using var forged = await Upgrade.TryAsync(server.WebSocketUri, Origin("https://app.example.com.evil.example"));
        Assert.True(listed.Accepted);
        Assert.Equal(HttpStatusCode.Forbidden, otherPort.Status);
        Assert.Equal(HttpStatusCode.Forbidden, forged.Status);

        // The socket a listed page opened works.
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
    }

    [Fact]
    public async Task AStarLetsEveryOriginIn()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:AllowedOrigins:0"] = "*",
        });

        await using var evil = await Upgrade.TryAsync(server.WebSocketUri, Origin("http://evil.example"));
        await using var sandboxed = await Upgrade.TryAsync(server.WebSocketUri, Origin("null"));
        Assert.True(evil.Accepted);
        Assert.True(sandboxed.Accepted);
    }

    [Fact]
    public async Task AnOriginThatIsNotAnOriginStopsTheStart()
    {
        using var database = new TempDatabase();
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:AllowedOrigins:0"] = "app.example.com/path",
        }));
        Assert.Contains("Protocol:AllowedOrigins", failure.Message);
    }

    private static Dictionary<string, string> Origin(string origin) => new() { ["Origin"] = origin };
}
