using System.Text.Json;

namespace WebSocketFrontend.Protocol;

/// <summary>A bounded page of online client ids, ascending, with the cursor for the next page.</summary>
public sealed record OnlinePage(IReadOnlyList<int> Clients, int? Next)
{
    /// <summary>The ids above <paramref name="after"/>, at most <paramref name="limit"/> of them.</summary>
    public static OnlinePage Of(IReadOnlyList<int> ascending, long after, int limit)
    {
        ArgumentNullException.ThrowIfNull(ascending);
        var page = ascending.Where(id => id > after).Take(limit + 1).ToList();
        var more = page.Count > limit;
        if (more)
        {
            page.RemoveAt(page.Count - 1);
        }

        return new OnlinePage(page, more ? page[^1] : null);
    }

    /// <summary>Writes <c>clients</c> and <c>next</c> (null on the last page).</summary>
    public static void Write(Utf8JsonWriter writer, OnlinePage page)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(page);
        writer.WriteStartArray("clients"u8);
        foreach (var id in page.Clients)
        {
            writer.WriteNumberValue(id);
        }

        writer.WriteEndArray();
        if (page.Next is { } next)
        {
            writer.WriteNumber("next"u8, next);
        }
        else
        {
            writer.WriteNull("next"u8);
        }
    }
}
