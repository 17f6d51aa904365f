using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// Sees the ping and pong frames a peer sends. The managed WebSocket answers pings inside <c>ReceiveAsync</c>
/// and tells its caller nothing about them, so a peer could send them without limit at no cost to itself.
/// This sits between the WebSocket and the upgraded connection and reads only the frame headers of what
/// the peer sends (RFC 6455, 5.2), skipping payloads; it changes no byte in either direction. It also sees the
/// peer's close frame, which lets a socket the WebSocket failed itself wait for the peer's answer before it goes.
/// </summary>
public sealed class ControlFrameMonitor
{
    private const byte PingOpcode = 0x9;
    private const byte PongOpcode = 0xA;
    private const byte CloseOpcode = 0x8;
    private const int LingerChunkBytes = 512;

    private readonly byte[] _header = new byte[14];
    private int _have;
    private int _need = 2;
    private long _payloadLeft;
    private bool _peerClosed;
    private Stream? _connection;

    /// <summary>Called, on the reading side, for every ping or pong frame header the peer sends.</summary>
    public Action? ControlFrameReceived { get; set; }

    /// <summary>Follows the frame headers in the bytes just read from the peer.</summary>
    public void Inspect(ReadOnlySpan<byte> read)
    {
        while (!read.IsEmpty)
        {
            if (_payloadLeft > 0)
            {
                var skip = (int)Math.Min(_payloadLeft, read.Length);
                _payloadLeft -= skip;
                read = read[skip..];
                continue;
            }

            _header[_have++] = read[0];
            read = read[1..];
            if (_have == 2)
            {
                var length7 = _header[1] & 0x7F;
                var masked = (_header[1] & 0x80) != 0;
                _need = 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + (masked ? 4 : 0);
            }

            if (_have >= 2 && _have == _need)
            {
                OnHeader();
            }
        }
    }

    private void OnHeader()
    {
        var length7 = _header[1] & 0x7F;
        _payloadLeft = length7 switch
        {
            126 => (_header[2] << 8) | _header[3],
            127 => (long)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(2, 8)) & long.MaxValue),
            _ => length7,
        };
        _have = 0;
        _need = 2;
        var opcode = _header[0] & 0x0F;
        if (opcode is PingOpcode or PongOpcode)
        {
            ControlFrameReceived?.Invoke();
        }
        else if (opcode == CloseOpcode)
        {
            _peerClosed = true;
        }
    }

    /// <summary>
    /// For a connection the WebSocket failed itself (invalid UTF-8 or a broken frame: it sent its close frame and
    /// stopped reading), reads and drops what the peer still sends until the peer's close frame or the end of the
    /// connection. Closing a TCP connection with unread bytes resets it, and a reset makes the peer's kernel drop
    /// the close frame the peer had not read yet: the peer would see a reset instead of the close status.
    /// Bounded by <paramref name="cancellationToken"/> (the session's close deadline).
    /// </summary>
    public async ValueTask AwaitPeerCloseAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return;
        }

        var discard = ArrayPool<byte>.Shared.Rent(LingerChunkBytes);
        try
        {
            while (!_peerClosed)
            {
                if (await _connection.ReadAsync(discard.AsMemory(0, LingerChunkBytes), cancellationToken) == 0)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or ConnectionAbortedException)
        {
            // The deadline passed or the peer dropped the connection: either way there is nothing left to wait for.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(discard);
        }
    }

    /// <summary>Wraps the upgraded connection: every read through the result is inspected, and a wait for the peer's close reads from it.</summary>
    public Stream Monitor(Stream connection)
    {
        var monitored = new MonitoredStream(connection, this);
        _connection = monitored;
        return monitored;
    }

    /// <summary>
    /// Puts a monitor under the WebSocket the request will be upgraded to, by wrapping the upgrade features the
    /// WebSocket middleware takes its connection from; must run before <c>UseWebSockets</c>.
    /// </summary>
    public static Task AttachAsync(HttpContext context, Func<Task> next)
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        var connect = context.Features.Get<IHttpExtendedConnectFeature>();
        if (upgrade is { IsUpgradableRequest: true } || connect is { IsExtendedConnect: true })
        {
            var monitor = new ControlFrameMonitor();
            context.Features.Set(monitor);
            // Only the feature the WebSocket will come from is wrapped: the other wrapper would live as long as the socket for nothing.
            if (upgrade is { IsUpgradableRequest: true })
            {
                context.Features.Set<IHttpUpgradeFeature>(new MonitoredUpgrade(upgrade, monitor));
            }
            else if (connect is not null)
            {
                context.Features.Set<IHttpExtendedConnectFeature>(new MonitoredConnect(connect, monitor));
            }
        }

        return next();
    }

    private sealed class MonitoredUpgrade(IHttpUpgradeFeature inner, ControlFrameMonitor monitor) : IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => inner.IsUpgradableRequest;

        public async Task<Stream> UpgradeAsync() => monitor.Monitor(await inner.UpgradeAsync());
    }

    private sealed class MonitoredConnect(IHttpExtendedConnectFeature inner, ControlFrameMonitor monitor) : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => inner.IsExtendedConnect;

        public string? Protocol => inner.Protocol;

        public async ValueTask<Stream> AcceptAsync() => monitor.Monitor(await inner.AcceptAsync());
    }

    /// <summary>The upgraded connection, passing every byte through and showing what is read to the monitor.</summary>
    private sealed class MonitoredStream(Stream inner, ControlFrameMonitor monitor) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanWrite => inner.CanWrite;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            monitor.Inspect(buffer.Span[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            monitor.Inspect(buffer[..read]);
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
