using System.Security.Cryptography;
using System.Text;

namespace Grains.Hosting;

/// <summary>
/// The admin key check shared by every host that serves operator pages (the frontend's <c>/api</c>,
/// <c>/openapi</c> and <c>/dashboard</c>, a standalone silo's <c>/dashboard</c>).
/// </summary>
public static class AdminKey
{
    private const string Scheme = "Bearer ";

    /// <summary>
    /// True when <paramref name="authorization"/> (an <c>Authorization</c> header) is <c>Bearer</c> with
    /// <paramref name="current"/> or <paramref name="previous"/>; false when no <paramref name="current"/> key is set.
    /// Digests are compared, both keys every time, so that neither a key's length nor which key matched
    /// shows in the time taken.
    /// </summary>
    public static bool IsPresented(string? authorization, string? current, string? previous)
    {
        if (string.IsNullOrEmpty(current))
        {
            return false;
        }

        var header = authorization ?? string.Empty;
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? header[Scheme.Length..].Trim() : string.Empty));
        var matchesCurrent = CryptographicOperations.FixedTimeEquals(given, SHA256.HashData(Encoding.UTF8.GetBytes(current)));
        var matchesPrevious = !string.IsNullOrEmpty(previous)
            && CryptographicOperations.FixedTimeEquals(given, SHA256.HashData(Encoding.UTF8.GetBytes(previous)));
        return matchesCurrent | matchesPrevious;
    }
}
