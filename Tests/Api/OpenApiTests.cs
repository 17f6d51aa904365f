using System.Net;
using System.Text.Json;
using Tests.Infrastructure;

namespace Tests.Api;

[Collection(OperatorsCollection.Name)]
public sealed class OpenApiTests(OperatorsFixture fixture)
{
    [Fact]
    public async Task TheDocumentNeedsTheAdminKey()
    {
        using var anonymous = fixture.Http(adminKey: null);

        var (status, type, _) = await OperatorsFixture.CallAsync(anonymous, HttpMethod.Get, "/openapi/v1.json");

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("application/problem+json", type);
    }

    [Fact]
    public async Task EveryRouteTheDocumentListsAnswersWithTheKeyAndRefusesWithoutIt()
    {
        using var http = fixture.Http();
        using var anonymous = fixture.Http(adminKey: null);
        var (status, _, document) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, "/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("bearer", document.GetProperty("components").GetProperty("securitySchemes").GetProperty("adminKey").GetProperty("scheme").GetString());

        var operations = new List<(HttpMethod Method, string Path)>();
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                var security = operation.Value.GetProperty("security").EnumerateArray().Single();
                Assert.True(security.TryGetProperty("adminKey", out _), $"{operation.Name} {path.Name} does not name its auth.");
                operations.Add((new HttpMethod(operation.Name.ToUpperInvariant()), path.Name));
            }
        }

        // Every route of /api: the eight from before and the six operator routes.
        Assert.Equal(14, operations.Count);
        Assert.Contains((HttpMethod.Get, "/api/stats"), operations);

        await using var ws = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        foreach (var (method, template) in operations)
        {
            // A fresh pair for each route, so that a delete or a revoke leaves the next route its own clients.
            var (_, id) = await ws.RegisterAsync(new { name = "openapi" });
            var (_, other) = await ws.RegisterAsync(new { name = "openapi-other" });
            var path = template.Replace("{id}", id.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("{other}", other.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
            var body = method == HttpMethod.Post || method == HttpMethod.Put ? """{"from":"openapi"}""" : null;

            var (answered, _, _) = await OperatorsFixture.CallAsync(http, method, path, body);
            var (refused, _, _) = await OperatorsFixture.CallAsync(anonymous, method, path, body);

            Assert.True(answered is not HttpStatusCode.NotFound and < HttpStatusCode.InternalServerError, $"{method} {path} answered {answered}.");
            Assert.True((int)answered < 400, $"{method} {path} answered {answered} to valid parameters.");
            Assert.Equal(HttpStatusCode.Unauthorized, refused);
        }
    }
}
