using System.Net;

namespace Tests.Api;

[Collection(OperatorsCollection.Name)]
public sealed class DashboardTests(OperatorsFixture fixture)
{
    [Fact]
    public async Task TheDashboardAnswersWithTheAdminKeyAnd401Without()
    {
        using var http = fixture.Http();
        using var anonymous = fixture.Http(adminKey: null);

        using var page = await http.GetAsync(new Uri("/dashboard/", UriKind.Relative), TestContext.Current.CancellationToken);
        using var refused = await anonymous.GetAsync(new Uri("/dashboard/", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("Bearer", refused.Headers.WwwAuthenticate.Single().Scheme);
    }
}
