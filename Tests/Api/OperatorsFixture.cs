using System.Net.Http.Headers;
using System.Text.Json;
using Tests.Infrastructure;

namespace Tests.Api;

/// <summary>One gateway with the dashboard on, shared by the admin API, console and browser tests.</summary>
public sealed class OperatorsFixture : IAsyncLifetime
{
    public TempDatabase Database { get; } = new();

    public GatewayServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Server = await GatewayServer.StartAsync(Database.Path, new Dictionary<string, string> { ["Dashboard:Enabled"] = "true" });

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Database.Dispose();
    }

    /// <summary>An HTTP client on the gateway; with <paramref name="adminKey"/> it sends the bearer key.</summary>
    public HttpClient Http(string? adminKey = GatewayServer.AdminKey)
    {
        var http = new HttpClient { BaseAddress = Server.HttpUri, Timeout = WsClient.Timeout };
        if (adminKey is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
        }

        return http;
    }

    /// <summary>Sends a request and reads its status, content type and JSON body (default when empty).</summary>
    public static async Task<(System.Net.HttpStatusCode Status, string? ContentType, JsonElement Body)> CallAsync(
        HttpClient http, HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        if (json is not null)
        {
            request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        }

        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        var body = default(JsonElement);
        if (!string.IsNullOrWhiteSpace(text) && response.Content.Headers.ContentType?.MediaType?.Contains("json", StringComparison.Ordinal) == true)
        {
            using var document = JsonDocument.Parse(text);
            body = document.RootElement.Clone();
        }

        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType, body);
    }
}

[CollectionDefinition(Name)]
public sealed class OperatorsCollection : ICollectionFixture<OperatorsFixture>
{
    public const string Name = "operators";
}
