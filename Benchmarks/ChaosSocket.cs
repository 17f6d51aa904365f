using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Benchmarks;

/// <summary>
/// A protocol socket for the chaos run: requests are matched to replies by <c>requestId</c>, and
/// every message (replies and pushes alike) is first handed, in arrival order, to the owner's
/// handler, so that a login's queue and the pushes after it are seen in the order the server wrote
/// them. A request whose socket dies, or that gets no answer in time, fails with <see cref="ChaosCutException"/>.
/// </summary>
public sealed class ChaosSocket : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly Action<JsonElement>? _onMessage;
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly SemaphoreSlim _sending = new(1, 1);
    private readonly CancellationTokenSource _closing = new();
    private readonly ChaosStats _stats;
    private Task _receiving = Task.CompletedTask;
    private int _nextRequestId;

    private ChaosSocket(ClientWebSocket socket, Action<JsonElement>? onMessage, ChaosStats stats)
    {
        _socket = socket;
        _onMessage = onMessage;
        _stats = stats;
    }

    /// <summary>Completes when the server closed the socket or the connection broke.</summary>
    public Task Closed => _receiving;

    public static async Task<ChaosSocket> ConnectAsync(Uri url, Action<JsonElement>? onMessage, ChaosStats stats, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket { Options = { Proxy = null } };
        try
        {
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            bound.CancelAfter(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(url, bound.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new ChaosCutException("connect failed", ex);
        }

        var chaos = new ChaosSocket(socket, onMessage, stats);
        chaos._receiving = Task.Run(chaos.ReceiveAsync, CancellationToken.None);
        return chaos;
    }

    /// <summary>
    /// Sends a request and returns the reply's body (an <c>error</c> reply included); the time until
    /// the answer, or until the socket died, counts toward the longest stall.
    /// </summary>
    public async Task<JsonElement> RequestAsync(string action, JsonObject parameters, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _nextRequestId);
        var reply = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        var envelope = new JsonObject
        {
            ["event"] = "client.to.instance",
            ["body"] = new JsonObject { ["action"] = action, ["requestId"] = id, ["parameters"] = parameters },
        };
        var started = Stopwatch.GetTimestamp();
        try
        {
            await _sending.WaitAsync(cancellationToken);
            try
            {
                await _socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(envelope), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
            }
            finally
            {
                _sending.Release();
            }

            if (_receiving.IsCompleted && !reply.Task.IsCompleted)
            {
                throw new ChaosCutException("the socket closed before the answer");
            }

            return await reply.Task.WaitAsync(timeout, cancellationToken);
        }
        // A socket aborted under a send (its frontend killed, say) fails it with an OperationCanceledException of its own.
        catch (Exception ex) when (ex is WebSocketException or TimeoutException or ChaosCutException or ObjectDisposedException or OperationCanceledException
            && !cancellationToken.IsCancellationRequested)
        {
            throw ex as ChaosCutException ?? new ChaosCutException($"{action}: {ex.GetType().Name}", ex);
        }
        finally
        {
            _pending.TryRemove(id, out _);
            _stats.Stall(action, Stopwatch.GetElapsedTime(started));
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", bound.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Gone already.
        }

        await _closing.CancelAsync();
        _socket.Abort();
        await _receiving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _socket.Dispose();
        _closing.Dispose();
        _sending.Dispose();
    }

    private async Task ReceiveAsync()
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        try
        {
            while (true)
            {
                buffer.ResetWrittenCount();
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await _socket.ReceiveAsync(buffer.GetMemory(4096), _closing.Token);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    buffer.Advance(result.Count);
                }
                while (!result.EndOfMessage);

                using var document = JsonDocument.Parse(buffer.WrittenMemory);
                var body = document.RootElement.GetProperty("body").Clone();
                _onMessage?.Invoke(body);
                if (body.TryGetProperty("requestId", out var id) && id.ValueKind == JsonValueKind.Number
                    && _pending.TryRemove(id.GetInt32(), out var waiting))
                {
                    waiting.TrySetResult(body);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The connection broke (a killed frontend) or we closed it.
        }
        finally
        {
            foreach (var (_, waiting) in _pending)
            {
                waiting.TrySetException(new ChaosCutException("the socket closed before the answer"));
            }
        }
    }
}

/// <summary>A request whose answer never came: the socket died or the wait ran out. Its outcome is unknown.</summary>
public sealed class ChaosCutException : Exception
{
    public ChaosCutException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }

    public ChaosCutException()
    {
    }

    public ChaosCutException(string message)
        : base(message)
    {
    }
}
