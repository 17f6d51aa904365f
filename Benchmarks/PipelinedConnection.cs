using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;

namespace Benchmarks;

/// <summary>The outcome of one pipelined request, valid only during the callback that receives it.</summary>
/// <param name="Action">The reply's action (<c>sent</c>, <c>logged</c>, <c>error</c>), or null when no reply came.</param>
/// <param name="Code">Null for a reply other than <c>error</c>; else the server's error code, or ours (<c>timeout</c>, <c>closed_by_server</c>).</param>
/// <param name="Parameters">The reply's parameters; undefined when no reply came.</param>
/// <param name="ReceivedAt">Stopwatch timestamp of the reply's last byte.</param>
public readonly record struct PipelinedReply(string? Action, string? Code, JsonElement Parameters, long ReceivedAt);

/// <summary>
/// A client socket that reads every frame the server sends, on a loop of its own: replies are matched
/// to requests in order, up to a window of them outstanding, and anything else (a <c>response</c> push,
/// <c>loggedOut</c>) goes to the push callback with the timestamp it arrived at. Callbacks run on the
/// receive loop, so they must be quick and copy what they keep. A URL on <c>/socket.io/</c> speaks
/// Socket.IO (<see cref="SocketIoFraming"/>): the same bodies in events, and the receive loop answers heartbeats.
/// </summary>
public sealed class PipelinedConnection : IAsyncDisposable
{
    /// <summary>A login's queue of 1,000 responses at 16 KiB each stays below this; more means something is wrong.</summary>
    private const int MaxFrameBytes = 32 * 1024 * 1024;

    /// <summary>A frame is read in chunks of at least this; a frame in more chunks than the cap allows is refused.</summary>
    private const int ChunkBytes = 16 * 1024;

    private static readonly TimeSpan _disposeTimeout = TimeSpan.FromSeconds(2);

    private readonly ClientWebSocket _socket;
    private readonly TimeSpan _timeout;
    private readonly bool _socketIo;
    private readonly Action<string, JsonElement, long>? _onPush;
    private readonly SemaphoreSlim _window;
    private readonly int _capacity;
    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly ArrayBufferWriter<byte> _sendBuffer = new(1024);
    private readonly Queue<Outstanding> _outstanding = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _receiving = Task.CompletedTask;
    private string? _brokenBy;
    private int _nextRequestId;

    private PipelinedConnection(ClientWebSocket socket, TimeSpan timeout, bool socketIo, int window, Action<string, JsonElement, long>? onPush)
    {
        _socket = socket;
        _timeout = timeout;
        _socketIo = socketIo;
        _window = new SemaphoreSlim(window, window);
        _capacity = window;
        _onPush = onPush;
    }

    /// <summary>Frames the server sent that answered no request.</summary>
    public long Pushes { get; private set; }

    /// <summary>Why the connection stopped taking requests, or null while it is usable.</summary>
    public string? BrokenBy => Volatile.Read(ref _brokenBy);

    /// <summary>Connects, bounded by <paramref name="timeout"/>, and starts the receive loop, which stops with <paramref name="cancellationToken"/>.</summary>
    /// <param name="url">The loopback endpoint.</param>
    /// <param name="timeout">The bound on connecting, on each write and on each awaited reply.</param>
    /// <param name="window">Requests outstanding at most; <see cref="SendAsync"/> waits for room beyond that.</param>
    /// <param name="maxFrames">The receive loop stops after this many frames, whatever the clock says.</param>
    /// <param name="onPush">Called with the action, parameters and arrival timestamp of every frame that answers no request.</param>
    /// <param name="cancellationToken">Ends the connection attempt and, later, the receive loop.</param>
    public static async Task<PipelinedConnection> OpenAsync(
        Uri url, TimeSpan timeout, int window, long maxFrames, Action<string, JsonElement, long>? onPush, CancellationToken cancellationToken)
    {
        // No proxy, even one named by the environment: the traffic goes to the loopback URL and nowhere else.
        var socket = new ClientWebSocket { Options = { Proxy = null } };
        try
        {
            var socketIo = SocketIoFraming.Speaks(url);
            using (var bound = Bound(timeout, cancellationToken))
            {
                await socket.ConnectAsync(url, bound.Token);
                if (socketIo)
                {
                    await SocketIoFraming.HandshakeAsync(socket, bound.Token);
                }
            }

            var connection = new PipelinedConnection(socket, timeout, socketIo, window, onPush);
            connection._receiving = connection.ReceiveLoopAsync(maxFrames, cancellationToken);
            return connection;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes one request once the window has room and returns without waiting for the reply: its
    /// outcome comes to <paramref name="onReply"/>, exactly once. Throws, and then never calls
    /// <paramref name="onReply"/>, when the request could not be written.
    /// </summary>
    public async Task SendAsync<TState>(
        string action, TState state, Action<Utf8JsonWriter, TState> parameters, Action<PipelinedReply> onReply, CancellationToken cancellationToken)
    {
        if (!await _window.WaitAsync(_timeout, cancellationToken))
        {
            throw new RequestFailedException("window_timeout", connectionBroken: true);
        }

        var queued = false;
        try
        {
            using var bound = Bound(_timeout, cancellationToken);
            await _writer.WaitAsync(bound.Token);
            try
            {
                var requestId = ++_nextRequestId;
                var envelope = Envelope(action, requestId, state, parameters);

                // Queued before it is written: the reply may arrive before SendAsync returns.
                lock (_outstanding)
                {
                    if (_brokenBy is { } broken)
                    {
                        throw new RequestFailedException(broken, connectionBroken: true);
                    }

                    _outstanding.Enqueue(new Outstanding(requestId, onReply));
                    queued = true;
                }

                try
                {
                    await _socket.SendAsync(envelope, WebSocketMessageType.Text, endOfMessage: true, bound.Token);
                }
                catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
                {
                    // A half-written frame leaves the stream unusable: the aborted socket ends the
                    // receive loop, which reports this request and every other outstanding one.
                    _socket.Abort();
                }
            }
            finally
            {
                _writer.Release();
            }
        }
        finally
        {
            if (!queued)
            {
                _window.Release();
            }
        }
    }

    /// <summary>One request and its reply, which must be <paramref name="expected"/>; returns a copy of its parameters and when it came.</summary>
    public async Task<(JsonElement Parameters, long ReceivedAt)> RequestAsync<TState>(
        string action, string expected, TState state, Action<Utf8JsonWriter, TState> parameters, CancellationToken cancellationToken)
    {
        var reply = new TaskCompletionSource<(JsonElement, long)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await SendAsync(action, state, parameters, r =>
        {
            if (r.Code is { } code)
            {
                reply.TrySetException(new RequestFailedException(code, connectionBroken: r.Action is null));
            }
            else if (r.Action != expected)
            {
                reply.TrySetException(new RequestFailedException($"unexpected_{r.Action}", connectionBroken: false));
            }
            else
            {
                reply.TrySetResult((r.Parameters.Clone(), r.ReceivedAt));
            }
        }, cancellationToken);

        try
        {
            return await reply.Task.WaitAsync(_timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new RequestFailedException("timeout", connectionBroken: true);
        }
    }

    /// <summary>Waits until no request is outstanding, at most <paramref name="timeout"/>; false when some still are.</summary>
    public async Task<bool> WhenIdleAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Holding every slot of the window at once means no request is outstanding.
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var held = 0;
        try
        {
            for (; held < _capacity; held++)
            {
                var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
                if (left <= TimeSpan.Zero || !await _window.WaitAsync(left, cancellationToken))
                {
                    return false;
                }
            }

            return true;
        }
        finally
        {
            if (held > 0)
            {
                _window.Release(held);
            }
        }
    }

    /// <summary>
    /// Closes the socket (bounded), waits for the receive loop (bounded) and reports every request
    /// still outstanding as failed. Not to be called while a <see cref="SendAsync"/> is under way.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                // Only our close frame: the receive loop is the socket's reader and sees the server's.
                using var bound = new CancellationTokenSource(_disposeTimeout);
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", bound.Token);
            }

            await _receiving.WaitAsync(_disposeTimeout);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or TimeoutException)
        {
            // The server did not finish the close in time or went away: stopping and aborting ends the loop.
        }

        await _stop.CancelAsync();
        _socket.Abort();
        try
        {
            await _receiving.WaitAsync(_disposeTimeout);
        }
        catch (TimeoutException)
        {
            // An aborted socket ends its pending receive at once; a loop still running here is abandoned.
        }

        FailOutstanding("closed");
        _socket.Dispose();
        _stop.Dispose();
    }

    private async Task ReceiveLoopAsync(long maxFrames, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        var buffer = new ArrayBufferWriter<byte>(4096);
        var failure = "frame_cap";
        try
        {
            for (long frames = 0; frames < maxFrames; frames++)
            {
                buffer.ResetWrittenCount();
                var complete = false;
                for (var chunks = 0; !complete && chunks <= MaxFrameBytes / ChunkBytes; chunks++)
                {
                    var result = await _socket.ReceiveAsync(buffer.GetMemory(ChunkBytes), linked.Token);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        failure = "closed_by_server";
                        return;
                    }

                    buffer.Advance(result.Count);
                    complete = result.EndOfMessage;
                }

                if (!complete)
                {
                    failure = "reply_too_large";
                    return;
                }

                if (_socketIo && SocketIoFraming.IsPing(buffer.WrittenSpan))
                {
                    await PongAsync(linked.Token);
                    continue;
                }

                if (!Dispatch(buffer.WrittenMemory, Stopwatch.GetTimestamp()))
                {
                    failure = "unexpected_reply";
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            failure = _stop.IsCancellationRequested ? "closed" : "timeout";
        }
        catch (WebSocketException ex)
        {
            failure = _stop.IsCancellationRequested ? "closed" : LoadRunner.Describe(ex);
        }
        finally
        {
            FailOutstanding(failure);
        }
    }

    /// <summary>Answers a Socket.IO heartbeat, between two requests: the writer lock keeps frames whole.</summary>
    private async Task PongAsync(CancellationToken cancellationToken)
    {
        using var bound = Bound(_timeout, cancellationToken);
        await _writer.WaitAsync(bound.Token);
        try
        {
            await _socket.SendAsync(SocketIoFraming.Pong, WebSocketMessageType.Text, endOfMessage: true, bound.Token);
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <summary>Hands one frame to the request it answers or to the push callback; false when the stream is out of step.</summary>
    private bool Dispatch(ReadOnlyMemory<byte> frame, long receivedAt)
    {
        string? action;
        JsonElement body;
        JsonDocument document;
        if (_socketIo && !SocketIoFraming.TryBody(frame, out frame))
        {
            return false;
        }

        try
        {
            document = JsonDocument.Parse(frame);
        }
        catch (JsonException)
        {
            return false;
        }

        using (document)
        {
            var root = document.RootElement;
            if (_socketIo)
            {
                body = root;
            }
            else if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("event", out var evt) || evt.GetString() is not ("instace.to.client" or "instance.to.client")
                || !root.TryGetProperty("body", out body))
            {
                return false;
            }

            if (body.ValueKind != JsonValueKind.Object
                || !body.TryGetProperty("action", out var actionElement) || (action = actionElement.GetString()) is null)
            {
                return false;
            }

            var parameters = body.TryGetProperty("parameters", out var p) ? p : default;
            var hasId = body.TryGetProperty("requestId", out var echoed);

            // Replies come in request order; an error raised before the envelope was read carries no id, but is still the next reply.
            if (!hasId && action != "error")
            {
                Pushes++;
                _onPush?.Invoke(action, parameters, receivedAt);
                return true;
            }

            Outstanding next;
            lock (_outstanding)
            {
                if (!_outstanding.TryPeek(out next)
                    || (hasId && (echoed.ValueKind != JsonValueKind.Number || !echoed.TryGetInt32(out var id) || id != next.RequestId)))
                {
                    return false;
                }

                _outstanding.Dequeue();
            }

            _window.Release();
            var code = action == "error"
                ? (parameters.ValueKind == JsonValueKind.Object && parameters.TryGetProperty("code", out var c) ? c.GetString() : null) ?? "error"
                : null;
            next.OnReply(new PipelinedReply(action, code, parameters, receivedAt));
            return true;
        }
    }

    /// <summary>Marks the connection broken and reports every outstanding request as failed with <paramref name="code"/>.</summary>
    private void FailOutstanding(string code)
    {
        Outstanding[] failed;
        lock (_outstanding)
        {
            _brokenBy ??= code;
            failed = [.. _outstanding];
            _outstanding.Clear();
        }

        foreach (var request in failed)
        {
            _window.Release();
            request.OnReply(new PipelinedReply(null, code, default, Stopwatch.GetTimestamp()));
        }
    }

    private ReadOnlyMemory<byte> Envelope<TState>(string action, int requestId, TState state, Action<Utf8JsonWriter, TState> parameters) =>
        RequestEnvelope.Write(_sendBuffer, action, requestId, state, parameters, _socketIo);

    private static CancellationTokenSource Bound(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(timeout);
        return bound;
    }

    private readonly record struct Outstanding(int RequestId, Action<PipelinedReply> OnReply);
}
