using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Tests.Infrastructure;

namespace Tests.Cluster;

/// <summary>
/// The dashboard a standalone silo serves on its own listener (<c>Dashboard:Enabled</c>, <c>Dashboard:Urls</c>),
/// from the built <c>Silo</c> process on SQLite: behind the admin key when on, and no HTTP port at all when off.
/// </summary>
public sealed class SiloDashboardTests
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(60);

    private static CancellationToken Cancelled => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ASiloServesTheDashboardWithTheAdminKeyAnd401WithoutOrWithAWrongOne()
    {
        using var database = new TempDatabase();
        var dashboard = new Uri($"http://127.0.0.1:{FreePort.Next()}");
        await using var silo = StartSilo("silo-dashboard-on", database, dashboard, enabled: true);
        using var http = new HttpClient { BaseAddress = dashboard, Timeout = TimeSpan.FromSeconds(10) };

        using var anonymous = await FirstAnswerAsync(silo, http, new Uri("/dashboard/", UriKind.Relative));
        using var page = await SendAsync(http, "/dashboard/", GatewayServer.AdminKey);
        using var wrong = await SendAsync(http, "/dashboard/", "not-the-admin-key");
        using var counters = await SendAsync(http, "/dashboard/version", GatewayServer.AdminKey);
        using var elsewhere = await SendAsync(http, "/", GatewayServer.AdminKey);

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal("Bearer", anonymous.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<html", await page.Content.ReadAsStringAsync(Cancelled), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.OK, counters.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, elsewhere.StatusCode);
    }

    [Fact]
    public async Task ASiloWithTheDashboardOnButNoAdminKeyAnswers404()
    {
        using var database = new TempDatabase();
        var dashboard = new Uri($"http://127.0.0.1:{FreePort.Next()}");
        await using var silo = StartSilo("silo-dashboard-no-key", database, dashboard, enabled: true, adminKey: null);
        using var http = new HttpClient { BaseAddress = dashboard, Timeout = TimeSpan.FromSeconds(10) };

        using var anonymous = await FirstAnswerAsync(silo, http, new Uri("/dashboard/", UriKind.Relative));
        using var withSomeKey = await SendAsync(http, "/dashboard/", GatewayServer.AdminKey);

        Assert.Equal(HttpStatusCode.NotFound, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, withSomeKey.StatusCode);
    }

    [Fact]
    public async Task ASiloWithTheDashboardOffOpensNoHttpPort()
    {
        using var database = new TempDatabase();
        var dashboard = new Uri($"http://127.0.0.1:{FreePort.Next()}");
        var gatewayPort = FreePort.Next();
        await using var silo = StartSilo("silo-dashboard-off", database, dashboard, enabled: false, gatewayPort: gatewayPort);

        // The gateway port accepts connections once the silo is active; the dashboard's address never does.
        await WaitUntilListeningAsync(silo, gatewayPort);
        using var client = new TcpClient();
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await client.ConnectAsync(IPAddress.Loopback, dashboard.Port, Cancelled));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        silo.AssertRunning();
    }

    [Theory]
    [InlineData("Dashboard:Urls", "ftp://127.0.0.1:21", "Dashboard:Urls")]
    [InlineData("Api:PreviousAdminKey", GatewayServer.AdminKey, "Api:PreviousAdminKey")]
    public async Task ASiloWithTheDashboardOnRefusesToStartOnABadSetting(string key, string value, string named)
    {
        using var database = new TempDatabase();
        await using var silo = StartSilo($"silo-dashboard-bad-{key.Replace(':', '-')}", database, new Uri($"http://127.0.0.1:{FreePort.Next()}"), enabled: true, extra: (key, value));

        Assert.True(await silo.ExitsWithinAsync(StartBound), $"The silo started with {key}={value}.\n{silo.Tail()}");
        Assert.Contains(named, silo.Tail(), StringComparison.Ordinal);
    }

    private static HostProcess StartSilo(string name, TempDatabase database, Uri dashboard, bool enabled, string? adminKey = GatewayServer.AdminKey, int? gatewayPort = null, (string Key, string Value)? extra = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["Storage:Provider"] = "Sqlite",
            ["Storage:SqlitePath"] = database.Path,
            ["Cluster:SiloPort"] = FreePort.Next().ToString(CultureInfo.InvariantCulture),
            ["Cluster:GatewayPort"] = (gatewayPort ?? FreePort.Next()).ToString(CultureInfo.InvariantCulture),
            ["Dashboard:Enabled"] = enabled ? "true" : "false",
            ["Dashboard:Urls"] = dashboard.GetLeftPart(UriPartial.Authority),
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:Console:FormatterName"] = "simple",
            ["Logging:Console:FormatterOptions:SingleLine"] = "true",
            ["Logging:Console:FormatterOptions:ColorBehavior"] = "Disabled",
        };
        if (adminKey is not null)
        {
            settings["Api:AdminKey"] = adminKey;
        }

        if (extra is { } setting)
        {
            settings[setting.Key] = setting.Value;
        }

        return HostProcess.Start(name, "Silo", settings, Path.GetDirectoryName(database.Path)!);
    }

    /// <summary>The first answer to a GET without a key, once the silo's listener is up; bounded.</summary>
    private static async Task<HttpResponseMessage> FirstAnswerAsync(HostProcess silo, HttpClient http, Uri path)
    {
        for (var deadline = DateTime.UtcNow + StartBound; DateTime.UtcNow < deadline;)
        {
            silo.AssertRunning();
            try
            {
                return await http.GetAsync(path, Cancelled);
            }
            catch (HttpRequestException)
            {
                // Kestrel is not listening yet.
            }

            await Task.Delay(200, Cancelled);
        }

        Assert.Fail($"{silo.Name} never served {path}.\n{silo.Tail()}");
        return null!;
    }

    private static async Task WaitUntilListeningAsync(HostProcess silo, int port)
    {
        for (var deadline = DateTime.UtcNow + StartBound; DateTime.UtcNow < deadline;)
        {
            silo.AssertRunning();
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(IPAddress.Loopback, port, Cancelled);
                return;
            }
            catch (SocketException)
            {
                // The silo is not active yet.
            }

            await Task.Delay(200, Cancelled);
        }

        Assert.Fail($"{silo.Name} never listened on its gateway port {port}.\n{silo.Tail()}");
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, string path, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(path, UriKind.Relative));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return await http.SendAsync(request, Cancelled);
    }
}
