using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Tests.Abuse;

/// <summary>
/// A WebSocket client written on a bare TCP socket, for what <see cref="System.Net.WebSockets.ClientWebSocket"/>
/// will not do: send ping frames on demand, stop in the middle of a frame, or never read at all.
/// </summary>
public sealed class RawWebSocket : IAsyncDisposable
{
    public const byte Text = 0x1;
    public const byte Close = 0x8;
    public const byte Ping = 0x9;
    public const byte Pong = 0xA;

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly byte[] _mask = new byte[4];

    private RawWebSocket(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>Connects and upgrades; <paramref name="receiveBufferBytes"/> keeps what the kernel takes in for a client that never reads small.</summary>
    public static async Task<RawWebSocket> ConnectAsync(Uri uri, int? receiveBufferBytes = null)
    {
        var tcp = new TcpClient();
        if (receiveBufferBytes is { } size)
        {
            tcp.ReceiveBufferSize = size;
        }

        using var bound = Bound();
        await tcp.ConnectAsync(uri.Host, uri.Port, bound.Token);
        var socket = new RawWebSocket(tcp);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var request = $"GET {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await socket._stream.WriteAsync(Encoding.ASCII.GetBytes(request), bound.Token);

        // The response headers, byte by byte so that nothing of the first frame is read with them.
        var headers = new StringBuilder();
        var one = new byte[1];
        while (!headers.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && headers.Length < 8192)
        {
            if (await socket._stream.ReadAsync(one, bound.Token) == 0)
            {
                throw new IOException("The server closed the connection during the upgrade.");
            }

            headers.Append((char)one[0]);
        }

        Assert.StartsWith("HTTP/1.1 101", headers.ToString(), StringComparison.Ordinal);
        return socket;
    }

    /// <summary>Writes one masked frame as a client must; <paramref name="declaredLength"/> may promise more payload than is sent.</summary>
    public async Task SendFrameAsync(byte opcode, ReadOnlyMemory<byte> payload, bool fin = true, long? declaredLength = null)
    {
        var length = declaredLength ?? payload.Length;
        var header = new List<byte> { (byte)((fin ? 0x80 : 0) | opcode) };
        if (length < 126)
        {
            header.Add((byte)(0x80 | length));
        }
        else if (length <= ushort.MaxValue)
        {
            header.Add(0x80 | 126);
            header.Add((byte)(length >> 8));
            header.Add((byte)length);
        }
        else
        {
            header.Add(0x80 | 127);
            var extended = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(extended, (ulong)length);
            header.AddRange(extended);
        }

        RandomNumberGenerator.Fill(_mask);
        header.AddRange(_mask);
        var masked = payload.ToArray();
        for (var i = 0; i < masked.Length; i++)
        {
            masked[i] ^= _mask[i % 4];
        }

        using var bound = Bound();
        await _stream.WriteAsync(header.ToArray(), bound.Token);
        await _stream.WriteAsync(masked, bound.Token);
    }

    public Task SendTextAsync(string text) => SendFrameAsync(Text, Encoding.UTF8.GetBytes(text));

    /// <summary>The next frame from the server, or null when the connection ended.</summary>
    public async Task<(byte Opcode, byte[] Payload)?> ReceiveFrameAsync(CancellationToken cancellationToken)
    {
        var head = new byte[2];
        if (!await ReadExactlyAsync(head, cancellationToken))
        {
            return null;
        }

        long length = head[1] & 0x7F;
        if (length == 126)
        {
            var extended = new byte[2];
            await ReadExactlyAsync(extended, cancellationToken);
            length = BinaryPrimitives.ReadUInt16BigEndian(extended);
        }
        else if (length == 127)
        {
            var extended = new byte[8];
            await ReadExactlyAsync(extended, cancellationToken);
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(extended);
        }

        var payload = new byte[length];
        return await ReadExactlyAsync(payload, cancellationToken) ? ((byte)(head[0] & 0x0F), payload) : null;
    }

    /// <summary>
    /// Reads until the server's close frame and returns its status code, answering nothing; the text frames
    /// before it are given to <paramref name="onText"/>. Null when the connection ended without one.
    /// </summary>
    public async Task<int?> ReceiveUntilCloseAsync(Action<string>? onText = null, int maxFrames = 1_000_000)
    {
        using var bound = Bound();
        for (var i = 0; i < maxFrames; i++)
        {
            if (await ReceiveFrameAsync(bound.Token) is not { } frame)
            {
                return null;
            }

            if (frame.Opcode == Close)
            {
                return frame.Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(frame.Payload) : 1005;
            }

            if (frame.Opcode == Text)
            {
                onText?.Invoke(Encoding.UTF8.GetString(frame.Payload));
            }
        }

        throw new InvalidOperationException($"No close frame within {maxFrames} frames.");
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<bool> ReadExactlyAsync(byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            await _stream.ReadExactlyAsync(buffer, cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException)
        {
            return false;
        }
    }

    private static CancellationTokenSource Bound()
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Infrastructure.WsClient.Timeout);
        return cts;
    }
}
