using System.Collections.Concurrent;
using System.Net;
using Microsoft.Playwright;
using Tests.Api;
using Tests.Infrastructure;

namespace Tests.Browser;

/// <summary>The console page in a real browser against the real gateway.</summary>
[Collection(OperatorsCollection.Name)]
public sealed class ConsolePageTests(OperatorsFixture fixture)
{
    [Fact]
    public async Task RegisteringAndLoggingInFromThePageMakesTheClientOnline()
    {
        await using var browser = await ConsoleBrowser.OpenAsync(fixture.Server.HttpUri);

        var id = await browser.RegisterAndLogInAsync("browser-login");

        await Assertions.Expect(browser.Page.Locator("#connection")).ToHaveTextAsync("connected");
        await Assertions.Expect(browser.Page.Locator("#log li.out").First).ToContainTextAsync("\"action\":\"register\"");
        using var api = new ApiClient(fixture.Server.HttpUri);
        var (status, client) = await api.GetAsync($"/api/clients/{id}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(client.GetProperty("online").GetBoolean());
        Assert.Equal("browser-login", client.GetProperty("name").GetString());
        await browser.ScreenshotAsync(nameof(RegisteringAndLoggingInFromThePageMakesTheClientOnline));
    }

    [Fact]
    public async Task AResponseSentOverHttpAppearsInThePage()
    {
        await using var browser = await ConsoleBrowser.OpenAsync(fixture.Server.HttpUri);
        var id = await browser.RegisterAndLogInAsync("browser-push");
        using var api = new ApiClient(fixture.Server.HttpUri);

        var (status, accepted) = await api.PostResponseAsync(id, """{"greeting":"hello page"}""");

        Assert.Equal(HttpStatusCode.Accepted, status);
        var seq = accepted.GetProperty("seq").GetInt64();
        var push = browser.Page.Locator($"#pushes li[data-seq='{seq}']");
        await Assertions.Expect(push).ToContainTextAsync("""{"greeting":"hello page"}""");
        await Assertions.Expect(push).ToContainTextAsync("from back end");
        await browser.ScreenshotAsync(nameof(AResponseSentOverHttpAppearsInThePage));
    }

    [Fact]
    public async Task TheAdminPanelListsTheClientOnceGivenTheKey()
    {
        await using var browser = await ConsoleBrowser.OpenAsync(fixture.Server.HttpUri);
        var id = await browser.RegisterAndLogInAsync("browser-listed");

        await UnlockAdminAsync(browser.Page);

        await Assertions.Expect(browser.Page.Locator($"#online button[data-id='{id}']")).ToBeVisibleAsync();
        await Assertions.Expect(browser.Page.Locator($"#clients tr[data-id='{id}'] td").Nth(1)).ToHaveTextAsync("yes");
        await Assertions.Expect(browser.Page.Locator("#c-connections")).Not.ToHaveTextAsync("-");
        await browser.Page.ClickAsync($"#clients tr[data-id='{id}']");
        await Assertions.Expect(browser.Page.Locator("#details")).ToContainTextAsync("\"name\": \"browser-listed\"");
        await browser.ScreenshotAsync(nameof(TheAdminPanelListsTheClientOnceGivenTheKey));
    }

    [Fact]
    public async Task DeletingTheClientFromTheAdminPanelLogsItOutAndForgetsIt()
    {
        await using var browser = await ConsoleBrowser.OpenAsync(fixture.Server.HttpUri);
        var id = await browser.RegisterAndLogInAsync("browser-deleted");
        await UnlockAdminAsync(browser.Page);
        await browser.Page.ClickAsync($"#online button[data-id='{id}']");
        await Assertions.Expect(browser.Page.Locator("#details")).ToContainTextAsync($"\"id\": {id}");

        await browser.Page.ClickAsync("#admin-delete");

        await Assertions.Expect(browser.Page.Locator("#admin-status")).ToHaveTextAsync($"client {id} deleted");
        await Assertions.Expect(browser.Page.Locator("#login-state")).ToHaveTextAsync("logged out (deleted)");
        await Assertions.Expect(browser.Page.Locator($"#clients tr[data-id='{id}']")).ToHaveCountAsync(0);
        using var api = new ApiClient(fixture.Server.HttpUri);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync($"/api/clients/{id}")).Status);
        await browser.ScreenshotAsync(nameof(DeletingTheClientFromTheAdminPanelLogsItOutAndForgetsIt));
    }

    [Fact]
    public async Task AWrongAdminKeyIsRefusedAndShown()
    {
        await using var browser = await ConsoleBrowser.OpenAsync(fixture.Server.HttpUri);

        await browser.Page.FillAsync("#admin-key", "not-the-key");
        await browser.Page.ClickAsync("#admin-unlock");

        await Assertions.Expect(browser.Page.Locator("#admin-status")).ToContainTextAsync("401 unauthorized");
        Assert.Equal(string.Empty, await browser.Page.InputValueAsync("#admin-key"));
    }

    [Fact]
    public async Task AfterItsSocketDropsThePageReconnectsLogsInAgainAndStillGetsResponses()
    {
        await using var browser = await ConsoleBrowser.OpenAsync(fixture.Server.HttpUri);
        var sockets = new ConcurrentQueue<IWebSocketRoute>();
        await browser.Page.RouteWebSocketAsync(url => url.EndsWith("/ws", StringComparison.Ordinal), route =>
        {
            route.ConnectToServer();
            sockets.Enqueue(route);
        });
        var id = await browser.RegisterAndLogInAsync("browser-reconnect");
        Assert.True(sockets.TryPeek(out var first));

        await first.CloseAsync(new WebSocketRouteCloseOptions { Code = 1011, Reason = "dropped by the test" });

        await Assertions.Expect(browser.Page.Locator("#login-state")).ToHaveTextAsync($"logged in again as {id}");
        await Assertions.Expect(browser.Page.Locator("#connection")).ToHaveTextAsync("connected");
        Assert.Equal(2, sockets.Count);
        using var api = new ApiClient(fixture.Server.HttpUri);
        var (status, accepted) = await api.PostResponseAsync(id, """{"after":"reconnect"}""");
        Assert.Equal(HttpStatusCode.Accepted, status);
        await Assertions.Expect(browser.Page.Locator($"#pushes li[data-seq='{accepted.GetProperty("seq").GetInt64()}']")).ToContainTextAsync("reconnect");
        await browser.ScreenshotAsync(nameof(AfterItsSocketDropsThePageReconnectsLogsInAgainAndStillGetsResponses));
    }

    private static async Task UnlockAdminAsync(IPage page)
    {
        await page.FillAsync("#admin-key", GatewayServer.AdminKey);
        await page.ClickAsync("#admin-unlock");
        await Assertions.Expect(page.Locator("#admin-status")).ToHaveTextAsync("key accepted");
    }
}
