using System.Text.Json;
using Grains.Interfaces;

namespace WebSocketFrontend.Protocol;

/// <summary>A pending response on the wire: <c>{"seq", "from", "at", "payload"}</c>.</summary>
public static class ResponseJson
{
    /// <summary>Writes the properties of a response into the current object.</summary>
    public static void Write(Utf8JsonWriter writer, PendingResponse response)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(response);
        writer.WriteNumber("seq"u8, response.Seq);
        if (response.From is { } from)
        {
            writer.WriteNumber("from"u8, from);
        }

        writer.WriteString("at"u8, response.At);
        writer.WritePropertyName("payload"u8);
        writer.WriteRawValue(UnicodeText.SanitizeJson(response.Payload), skipInputValidation: true);
    }

    /// <summary>
    /// An upper bound of the bytes <see cref="WriteObject"/> writes for <paramref name="response"/>: the payload as
    /// stored, and room for the other properties at their longest, with punctuation and a separating comma.
    /// </summary>
    public static long MaxBytes(PendingResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        return ResponseFieldsMaxBytes + System.Text.Encoding.UTF8.GetByteCount(response.Payload);
    }

    /// <summary><c>{"seq":</c> 20 digits <c>,"from":</c> 11 <c>,"at":"</c> 33 <c>","payload":</c> … <c>},</c>, rounded up.</summary>
    private const int ResponseFieldsMaxBytes = 112;

    /// <summary>Writes a response as an object of its own (an item of the login queue).</summary>
    public static void WriteObject(Utf8JsonWriter writer, PendingResponse response)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        Write(writer, response);
        writer.WriteEndObject();
    }
}
