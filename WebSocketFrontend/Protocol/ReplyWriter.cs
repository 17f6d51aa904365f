using System.Buffers;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace WebSocketFrontend.Protocol;

/// <summary>
/// Writes server messages: the body <c>{"action", "requestId", "parameters"}</c>, wrapped by a transport's
/// <see cref="FrameFormat"/> (on <c>/ws</c>, <c>{"event": …, "body": {…}}</c>).
/// </summary>
public sealed class ReplyWriter
{
    private readonly FrameFormat _format;

    /// <summary>The writer of the raw <c>/ws</c> envelope, with <see cref="ProtocolOptions.ReplyEvent"/>.</summary>
    public ReplyWriter(IOptions<ProtocolOptions> options)
        : this(new EnvelopeFormat(options.Value.ReplyEvent))
    {
    }

    /// <summary>A writer of frames in <paramref name="format"/>.</summary>
    public ReplyWriter(FrameFormat format) => _format = format;

    /// <summary>One frame with the given action and parameters, written by <paramref name="parameters"/>.</summary>
    public byte[] Write<TState>(string action, string? requestIdJson, TState state, Action<Utf8JsonWriter, TState> parameters) =>
        Write(action, requestIdJson, null, state, parameters);

    /// <summary>The reply to <paramref name="request"/>: its request id echoed, and routed by its transport context.</summary>
    public byte[] Answer<TState>(ClientRequest request, string action, TState state, Action<Utf8JsonWriter, TState> parameters) =>
        Write(action, request.RequestIdJson, request.Context, state, parameters);

    /// <summary>
    /// One frame with the given action and parameters; <paramref name="context"/> is the transport context of the
    /// request it answers, or null.
    /// </summary>
    public byte[] Write<TState>(string action, string? requestIdJson, object? context, TState state, Action<Utf8JsonWriter, TState> parameters)
    {
        // Every frame is written into this thread's scratch buffer and copied out once, at its exact size: a frame
        // costs the one array it is sent from. A callback that writes another frame meanwhile gets a scratch of its own.
        var scratch = Scratch.Take();
        try
        {
            var buffer = scratch.Buffer;
            _format.WriteStart(buffer, context);
            var writer = scratch.WriterFor(buffer);
            writer.WriteStartObject();
            writer.WriteString("action"u8, action);
            if (requestIdJson is not null)
            {
                writer.WritePropertyName("requestId"u8);
                writer.WriteRawValue(requestIdJson, skipInputValidation: true);
            }

            writer.WriteStartObject("parameters"u8);
            parameters(writer, state);
            writer.WriteEndObject();
            writer.WriteEndObject();
            writer.Flush();
            _format.WriteEnd(buffer, context);
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            Scratch.Return(scratch);
        }
    }

    /// <summary>A reply with empty parameters.</summary>
    public byte[] Write(string action, string? requestIdJson) =>
        Write(action, requestIdJson, null, 0, static (_, _) => { });

    /// <summary>The reply to <paramref name="request"/>, with empty parameters.</summary>
    public byte[] Answer(ClientRequest request, string action) =>
        Write(action, request.RequestIdJson, request.Context, 0, static (_, _) => { });

    /// <summary>The <c>error</c> reply of PROTOCOL.md.</summary>
    public byte[] Error(string code, string message, string? request, string? requestIdJson, object? context = null) =>
        Write("error", requestIdJson, context, (code, message, request), static (w, s) =>
        {
            w.WriteString("code"u8, s.code);
            w.WriteString("message"u8, s.message);
            if (s.request is not null)
            {
                w.WriteString("request"u8, s.request);
            }
        });

    /// <summary>
    /// A thread's buffer and JSON writer for frames, kept between frames so that writing one allocates nothing but
    /// the frame itself. A buffer that grew past <see cref="KeptBytes"/> (a long login page) is not kept.
    /// </summary>
    private sealed class Scratch
    {
        private const int KeptBytes = 64 * 1024;

        [ThreadStatic]
        private static Scratch? _cached;

        private Utf8JsonWriter? _writer;

        public ArrayBufferWriter<byte> Buffer { get; } = new(1024);

        public static Scratch Take()
        {
            var scratch = _cached ?? new Scratch();
            _cached = null;
            return scratch;
        }

        public static void Return(Scratch scratch)
        {
            if (scratch.Buffer.Capacity > KeptBytes)
            {
                return;
            }

            scratch.Buffer.ResetWrittenCount();
            _cached = scratch;
        }

        /// <summary>The JSON writer, reset to write into <paramref name="buffer"/> from where it stands now.</summary>
        public Utf8JsonWriter WriterFor(ArrayBufferWriter<byte> buffer)
        {
            if (_writer is null)
            {
                _writer = new Utf8JsonWriter(buffer);
            }
            else
            {
                _writer.Reset(buffer);
            }

            return _writer;
        }
    }
}
