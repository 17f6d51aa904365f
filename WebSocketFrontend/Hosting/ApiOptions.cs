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
    /// <see cref="PreviousAdminKey"/>, compared in constant time (<see cref="Grains.Hosting.AdminKey.IsPresented"/>,
    /// which standalone silos use too).
    /// </summary>
    public bool IsPresentedBy(HttpRequest request) =>
        Grains.Hosting.AdminKey.IsPresented(request.Headers.Authorization.ToString(), AdminKey, PreviousAdminKey);
}
