using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tests.Infrastructure;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.SocketIo;

namespace Tests.SocketIo;

/// <summary>The Socket.IO settings: their defaults, a wrong value refused by its key, and when the endpoint is mapped.</summary>
public sealed class SocketIoSettingsTests
{
    [Fact]
    public async Task TheDefaultsServeBothProtocolVersionsWithTheReferenceHeartbeatsAndSameOriginOnly()
    {
        await using var app = Build();
        var options = app.Services.GetRequiredService<IOptions<SocketIoOptions>>().Value;
        Assert.Equal("/socket.io/", options.Path);
        Assert.True(options.AllowEio3);
        Assert.Equal((TimeSpan.FromSeconds(25), TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(45)), (options.PingInterval, options.PingTimeout, options.ConnectTimeout));
        Assert.Empty(options.CorsOrigins);
    }

    [Theory]
    [InlineData("SocketIo:Path", "socket.io")]
    [InlineData("SocketIo:Path", "/socket.io/?x=1")]
    [InlineData("SocketIo:PingInterval", "00:00:00")]
    [InlineData("SocketIo:PingTimeout", "-00:00:01")]
    [InlineData("SocketIo:ConnectTimeout", "00:00:00")]
    [InlineData("SocketIo:CorsOrigins:0", "not an origin")]
    public async Task AWrongValueIsRefusedByItsKey(string key, string value)
    {
        // The endpoint is mapped at SocketIo:Path, so building the application already reads (and checks) the section.
        var ex = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var app = Build($"--{key}={value}");
            _ = app.Services.GetRequiredService<IOptions<SocketIoOptions>>().Value;
        });
        Assert.Contains(key.Split(':')[1], ex.Message + ex.InnerException?.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheEndpointIsServedBesideWsAtItsPath()
    {
        await using (var defaults = Build())
        {
            Assert.Contains("/socket.io/", RoutePatterns(defaults));
            Assert.Contains("/ws", RoutePatterns(defaults));
        }

        await using var moved = Build("--SocketIo:Path=/rt/");
        Assert.Contains("/rt/", RoutePatterns(moved));
        Assert.DoesNotContain("/socket.io/", RoutePatterns(moved));
    }

    [Fact]
    public async Task WithEngineIoV3TurnedOffAV2ClientIsRefusedAndV4IsStillServed()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string> { ["SocketIo:AllowEio3"] = "false" },
            services: services => services.AddSingleton<ISocketIoConnectionHandler, EchoHandler>());
        using var http = PollingClient.NewHttp(server.HttpUri);
        var refused = await http.GetAsync(PollingClient.Query(3, "polling"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var body = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        Assert.Equal((5, "Unsupported protocol version"), (body.GetProperty("code").GetInt32(), body.GetProperty("message").GetString()));

        using var client = await PollingClient.OpenAsync(server.HttpUri, eio: 4);
        await client.PostAsync("40");
        Assert.StartsWith("40{\"sid\":", (await client.PollForAsync(1))[0]);
        await client.PostAsync("1");
    }

    private static List<string?> RoutePatterns(IEndpointRouteBuilder app) =>
        [.. app.DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>().Select(e => e.RoutePattern.RawText)];

    private static Microsoft.AspNetCore.Builder.WebApplication Build(params string[] settings) =>
        GatewayApplication.Create([$"--Storage:SqlitePath={Path.Combine(Path.GetTempPath(), "unused-settings-test.db")}", .. settings]);
}
