using System.Net;
using System.Net.WebSockets;

namespace Tests.Abuse;

/// <summary>A WebSocket upgrade attempt whose HTTP answer is kept, for refusals that happen before the upgrade.</summary>
public sealed class Upgrade : IAsyncDisposable
{
    private Upgrade(ClientWebSocket socket, HttpStatusCode status, string? retryAfter)
    {
        Socket = socket;
        Status = status;
        RetryAfter = retryAfter;
    }

    /// <summary>The socket: open when <see cref="Status"/> is 101.</summary>
    public ClientWebSocket Socket { get; }

    public HttpStatusCode Status { get; }

    public string? RetryAfter { get; }

    public bool Accepted => Status == HttpStatusCode.SwitchingProtocols;

    /// <summary>Tries an upgrade with extra request headers (<c>Origin</c>, <c>X-Forwarded-For</c>).</summary>
    public static async Task<Upgrade> TryAsync(Uri uri, IReadOnlyDictionary<string, string>? headers = null, Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            socket.Options.SetRequestHeader(name, value);
        }

        configure?.Invoke(socket.Options);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(TimeSpan.FromSeconds(20));
        try
        {
            await socket.ConnectAsync(uri, bound.Token);
        }
        catch (WebSocketException)
        {
            // Refused before the upgrade: the status and headers say why.
        }

        var retryAfter = socket.HttpResponseHeaders is { } h && h.TryGetValue("Retry-After", out var values) ? values.FirstOrDefault() : null;
        return new Upgrade(socket, socket.HttpStatusCode, retryAfter);
    }

    public async ValueTask DisposeAsync()
    {
        if (Socket.State == WebSocketState.Open)
        {
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            bound.CancelAfter(TimeSpan.FromSeconds(10));
            try
            {
                await Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", bound.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
                // The server went first; nothing left to close.
            }
        }

        Socket.Dispose();
    }
}
