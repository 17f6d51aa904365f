using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Tests.Infrastructure;

/// <summary>The gateway's <c>/api</c> over real HTTP on 127.0.0.1, every call bounded.</summary>
public sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;

    /// <param name="baseUri">The frontend's HTTP address.</param>
    /// <param name="adminKey">The bearer key sent with every call; null sends none.</param>
    /// <param name="timeout">How long one call may take; unset, <see cref="WsClient.Timeout"/>.</param>
    public ApiClient(Uri baseUri, string? adminKey = GatewayServer.AdminKey, TimeSpan? timeout = null)
    {
        _http = new HttpClient { BaseAddress = baseUri, Timeout = timeout ?? WsClient.Timeout };
        if (adminKey is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
        }
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> PostResponseAsync(int id, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await _http.PostAsync(new Uri($"/api/clients/{id}/responses", UriKind.Relative), content, TestContext.Current.CancellationToken);
        return (response.StatusCode, await BodyAsync(response));
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(string path)
    {
        using var response = await _http.GetAsync(new Uri(path, UriKind.Relative), TestContext.Current.CancellationToken);
        return (response.StatusCode, await BodyAsync(response));
    }

    /// <summary>A request without a body, for the routes that change links and tokens.</summary>
    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        using var response = await _http.SendAsync(request, TestContext.Current.CancellationToken);
        return (response.StatusCode, await BodyAsync(response));
    }

    /// <summary>Waits, bounded, until the client's queue has <paramref name="length"/> responses.</summary>
    public async Task WaitForQueueLengthAsync(int id, int length)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var (status, body) = await GetAsync($"/api/clients/{id}");
            if (status == HttpStatusCode.OK && body.GetProperty("queueLength").GetInt32() == length)
            {
                return;
            }

            await Task.Delay(25, TestContext.Current.CancellationToken);
        }

        Assert.Fail($"The queue of client {id} never reached {length}.");
    }

    public void Dispose() => _http.Dispose();

    private static async Task<JsonElement> BodyAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        if (string.IsNullOrWhiteSpace(text))
        {
            return default;
        }

        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }
}
