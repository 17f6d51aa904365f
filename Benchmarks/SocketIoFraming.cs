using System.Buffers;
using System.Net.WebSockets;

namespace Benchmarks;

/// <summary>
/// The wire a client connection speaks, chosen by its URL: raw <c>/ws</c> frames (the envelope
/// <c>{"event", "body"}</c>), or Socket.IO on Engine.IO v4 over a direct WebSocket
/// (<c>/socket.io/?EIO=4&amp;transport=websocket</c>): the body is the argument of the events
/// <c>42["client.to.instance",{…}]</c> and <c>42["instace.to.client",{…}]</c>, and the server's
/// heartbeat <c>2</c> is answered with <c>3</c>.
/// </summary>
public static class SocketIoFraming
{
    /// <summary>The Socket.IO path the gateway serves by default.</summary>
    public const string Path = "/socket.io/";

    /// <summary>The Engine.IO query of a direct WebSocket connection, no polling first.</summary>
    public const string Query = "EIO=4&transport=websocket";

    /// <summary>Where a request event starts; the body and <c>]</c> follow.</summary>
    private static readonly byte[] _requestStart = "42[\"client.to.instance\","u8.ToArray();

    /// <summary>The reply event, as the server spells it by default, and as it may be configured.</summary>
    private static readonly byte[] _replyStart = "42[\"instace.to.client\","u8.ToArray();

    private static readonly byte[] _replyStartCorrected = "42[\"instance.to.client\","u8.ToArray();

    /// <summary>True when <paramref name="url"/> names the Socket.IO endpoint rather than <c>/ws</c>.</summary>
    public static bool Speaks(Uri url) => url.AbsolutePath.StartsWith(Path, StringComparison.Ordinal);

    /// <summary>The Socket.IO endpoint on the same server as the <c>/ws</c> URL <paramref name="ws"/>.</summary>
    public static Uri EndpointBeside(Uri ws) => new UriBuilder(ws) { Path = Path, Query = Query }.Uri;

    /// <summary>Writes the start of a request event; the caller writes the body object after it, then <see cref="WriteEnd"/>.</summary>
    public static void WriteStart(IBufferWriter<byte> buffer) => buffer.Write(_requestStart);

    public static void WriteEnd(IBufferWriter<byte> buffer) => buffer.Write("]"u8);

    /// <summary>True for the server's heartbeat, which must be answered with <see cref="Pong"/>.</summary>
    public static bool IsPing(ReadOnlySpan<byte> frame) => frame.Length == 1 && frame[0] == (byte)'2';

    /// <summary>The heartbeat's answer.</summary>
    public static ReadOnlyMemory<byte> Pong { get; } = "3"u8.ToArray();

    /// <summary>The body of a reply event (a slice of <paramref name="frame"/>, not a copy); false for any other packet.</summary>
    public static bool TryBody(ReadOnlyMemory<byte> frame, out ReadOnlyMemory<byte> body)
    {
        var span = frame.Span;
        var start = span.StartsWith(_replyStart) ? _replyStart.Length : span.StartsWith(_replyStartCorrected) ? _replyStartCorrected.Length : -1;
        if (start < 0 || span.Length <= start || span[^1] != (byte)']')
        {
            body = default;
            return false;
        }

        body = frame[start..^1];
        return true;
    }

    /// <summary>
    /// The Socket.IO handshake on a connected WebSocket: the Engine.IO open packet <c>0{…}</c>, the
    /// namespace connect <c>40</c>, and the server's <c>40{"sid":…}</c>. Bounded by <paramref name="cancellationToken"/>.
    /// </summary>
    public static async Task HandshakeAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        var open = await ReceiveAsync(socket, buffer, cancellationToken);
        if (open.Length < 2 || open.Span[0] != (byte)'0' || open.Span[1] != (byte)'{')
        {
            throw new RequestFailedException("no_engineio_open", connectionBroken: true);
        }

        await socket.SendAsync("40"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);

        // A heartbeat may come first on a slow machine; at most a few are skipped.
        for (var frames = 0; frames < 4; frames++)
        {
            var connected = await ReceiveAsync(socket, buffer, cancellationToken);
            if (IsPing(connected.Span))
            {
                await socket.SendAsync(Pong, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
                continue;
            }

            if (!connected.Span.StartsWith("40{"u8))
            {
                throw new RequestFailedException(connected.Span.StartsWith("44"u8) ? "socketio_connect_error" : "no_socketio_connect", connectionBroken: true);
            }

            return;
        }

        throw new RequestFailedException("no_socketio_connect", connectionBroken: true);
    }

    private static async Task<ReadOnlyMemory<byte>> ReceiveAsync(ClientWebSocket socket, ArrayBufferWriter<byte> buffer, CancellationToken cancellationToken)
    {
        buffer.ResetWrittenCount();
        for (var chunks = 0; chunks < 16; chunks++)
        {
            var result = await socket.ReceiveAsync(buffer.GetMemory(512), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new RequestFailedException("closed_by_server", connectionBroken: true);
            }

            buffer.Advance(result.Count);
            if (result.EndOfMessage)
            {
                return buffer.WrittenMemory;
            }
        }

        throw new RequestFailedException("handshake_too_large", connectionBroken: true);
    }
}
