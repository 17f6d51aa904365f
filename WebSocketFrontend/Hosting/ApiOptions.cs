using System.Security.Cryptography;
using System.Text;

namespace WebSocketFrontend.Hosting;

/// <summary>The HTTP API for back ends and operators, section <c>Api</c>.</summary>
public sealed class ApiOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Api";

    /// <summary>The bearer key that <c>/api</c> requests must carry; without one the routes are off (404).</summary>
    public string? AdminKey { get; set; }

    /// <summary>
    /// A second key also accepted while operators roll the admin key over (default unset): the old
    /// one moves here, the new one into <see cref="AdminKey"/>, and once every back end uses the new
    /// one this is removed.
    /// </summary>
    public string? PreviousAdminKey { get; set; }

    /// <summary>
    /// True when <paramref name="request"/> carries <c>Authorization: Bearer</c> with <see cref="AdminKey"/> or
    /// <see cref="PreviousAdminKey"/>. Digests are compared, both keys every time, so that neither a key's
    /// length nor which key matched shows in the time taken.
    /// </summary>
    public bool IsPresentedBy(HttpRequest request)
    {
        if (string.IsNullOrEmpty(AdminKey))
        {
            return false;
        }

        const string scheme = "Bearer ";
        var header = request.Headers.Authorization.ToString();
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : string.Empty));
        var matchesCurrent = CryptographicOperations.FixedTimeEquals(given, SHA256.HashData(Encoding.UTF8.GetBytes(AdminKey)));
        var matchesPrevious = !string.IsNullOrEmpty(PreviousAdminKey)
            && CryptographicOperations.FixedTimeEquals(given, SHA256.HashData(Encoding.UTF8.GetBytes(PreviousAdminKey)));
        return matchesCurrent | matchesPrevious;
    }
}
