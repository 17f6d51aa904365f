using System.Net;

namespace Tests.Api;

[Collection(OperatorsCollection.Name)]
public sealed class ConsoleFilesTests(OperatorsFixture fixture)
{
    [Theory]
    [InlineData("/console", "text/html")]
    [InlineData("/console/client.js", "text/javascript")]
    [InlineData("/console/console.js", "text/javascript")]
    [InlineData("/console/console.css", "text/css")]
    public async Task ConsoleFilesComeWithTheirTypeAndAPolicy(string path, string type)
    {
        using var http = fixture.Http(adminKey: null);

        using var response = await http.GetAsync(new Uri(path, UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(type, response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        var policy = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", policy, StringComparison.Ordinal);
        Assert.Contains("script-src 'self'", policy, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/console/nothing-here.js")]
    [InlineData("/console/../appsettings.json")]
    [InlineData("/console/%2e%2e/appsettings.json")]
    public async Task NothingOutsideTheConsoleFilesIsServed(string path)
    {
        using var http = fixture.Http(adminKey: null);

        using var response = await http.GetAsync(new Uri(path, UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task TheConsoleFolderHasNoListing()
    {
        using var http = fixture.Http(adminKey: null);

        var page = await http.GetStringAsync(new Uri("/console/", UriKind.Relative), TestContext.Current.CancellationToken);

        // The folder's address gives the page, never a list of its files.
        Assert.Contains("<title>Gateway console</title>", page, StringComparison.Ordinal);
        Assert.DoesNotContain("client.js</a>", page, StringComparison.Ordinal);
    }
}
