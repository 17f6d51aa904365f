using System.Buffers;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace WebSocketFrontend.Protocol;

/// <summary>Writes server messages: <c>{"event": …, "body": {"action", "requestId", "parameters"}}</c>.</summary>
public sealed class ReplyWriter(IOptions<ProtocolOptions> options)
{
    private readonly string _event = options.Value.ReplyEvent;

    /// <summary>One frame with the given action and parameters, written by <paramref name="parameters"/>.</summary>
    public byte[] Write<TState>(string action, string? requestIdJson, TState state, Action<Utf8JsonWriter, TState> parameters)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("event"u8, _event);
            writer.WriteStartObject("body"u8);
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
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A reply with empty parameters.</summary>
    public byte[] Write(string action, string? requestIdJson) =>
        Write(action, requestIdJson, 0, static (_, _) => { });

    /// <summary>The <c>error</c> reply of PROTOCOL.md.</summary>
    public byte[] Error(string code, string message, string? request, string? requestIdJson) =>
        Write("error", requestIdJson, (code, message, request), static (w, s) =>
        {
            w.WriteString("code"u8, s.code);
            w.WriteString("message"u8, s.message);
            if (s.request is not null)
            {
                w.WriteString("request"u8, s.request);
            }
        });
}
