using Microsoft.Playwright;

namespace Tests.Browser;

/// <summary>
/// Debian's chromium driven by Playwright on the console page. Playwright's own browser download is
/// not used: the browser is the one <c>GATEWAY_TEST_CHROMIUM</c> names, or <c>chromium</c> on the PATH.
/// </summary>
public sealed class ConsoleBrowser : IAsyncDisposable
{
    /// <summary>How long a step of a browser test may wait for the page.</summary>
    public static readonly float StepTimeoutMs = 20_000;

    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;

    private ConsoleBrowser(IPlaywright playwright, IBrowser browser, IPage page)
    {
        _playwright = playwright;
        _browser = browser;
        Page = page;
    }

    public IPage Page { get; }

    /// <summary>Opens <c>/console</c> of the gateway at <paramref name="baseUri"/> in a fresh headless browser.</summary>
    public static async Task<ConsoleBrowser> OpenAsync(Uri baseUri)
    {
        var executable = FindChromium();
        Assertions.SetDefaultExpectTimeout(StepTimeoutMs);
        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = executable,
                Headless = true,
                Timeout = StepTimeoutMs,

                // The CI container runs as root, where chromium's sandbox cannot start.
                Args = ["--no-sandbox"],
            });
            var page = await browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = baseUri.ToString() });
            page.SetDefaultTimeout(StepTimeoutMs);
            var errors = new List<string>();
            page.PageError += (_, error) => errors.Add(error);
            await page.GotoAsync("/console");
            Assert.Empty(errors);
            return new ConsoleBrowser(playwright, browser, page);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>Saves a screenshot of the whole page under the test output folder (bin/), named after the test.</summary>
    public async Task ScreenshotAsync(string name)
    {
        var folder = Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, $"{name}.png");
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.Current.AddAttachment(name, await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken), "image/png");
    }

    /// <summary>Registers and logs in from the client panel; returns the client's id.</summary>
    public async Task<int> RegisterAndLogInAsync(string name)
    {
        await Page.FillAsync("#register-info", $$"""{"name": "{{name}}", "location": "browser"}""");
        await Page.ClickAsync("#register");
        await Assertions.Expect(Page.Locator("#login-state")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^registered as \\d+$"));
        Assert.False(string.IsNullOrEmpty(await Page.InputValueAsync("#token")));
        var id = int.Parse(await Page.Locator("#client-id").TextContentAsync() ?? "", System.Globalization.CultureInfo.InvariantCulture);
        await Page.ClickAsync("#login");
        await Assertions.Expect(Page.Locator("#login-state")).ToHaveTextAsync($"logged in as {id}");
        return id;
    }

    public async ValueTask DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }

    private static string FindChromium()
    {
        var configured = Environment.GetEnvironmentVariable("GATEWAY_TEST_CHROMIUM");
        if (!string.IsNullOrEmpty(configured))
        {
            return File.Exists(configured)
                ? configured
                : throw new InvalidOperationException($"GATEWAY_TEST_CHROMIUM names {configured}, which does not exist.");
        }

        var found = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .SelectMany(dir => new[] { "chromium", "chromium-browser" }.Select(name => Path.Combine(dir, name)))
            .FirstOrDefault(File.Exists);
        return found ?? throw new InvalidOperationException(
            "The browser tests need chromium: install it (apt-get install -y chromium; .ci/run does) or set GATEWAY_TEST_CHROMIUM to its path.");
    }
}
