using Orleans.Runtime;

namespace Grains.Interfaces;

/// <summary>
/// Grain references without the per-call reflection of <c>IGrainFactory.GetGrain&lt;T&gt;(key)</c>, which
/// resolves the interface's <see cref="GrainInterfaceType"/> from its custom attributes on every call
/// (a measurable part of a login). The first reference of each interface is made the ordinary way and
/// its grain type and interface type are kept; later ones are built from them, as Orleans itself does.
/// </summary>
public static class GrainReferences
{
    /// <summary>The grain with string key <paramref name="key"/>.</summary>
    public static T Grain<T>(this IGrainFactory factory, string key) where T : IGrainWithStringKey =>
        Resolved<T>.Types is { } types
            ? (T)factory.GetGrain(GrainId.Create(types.Grain, IdSpan.Create(key)), types.Interface)
            : Resolved<T>.Keep(factory.GetGrain<T>(key));

    /// <summary>The grain with integer key <paramref name="key"/>.</summary>
    public static T Grain<T>(this IGrainFactory factory, long key) where T : IGrainWithIntegerKey =>
        Resolved<T>.Types is { } types
            ? (T)factory.GetGrain(GrainId.Create(types.Grain, GrainIdKeyExtensions.CreateIntegerKey(key)), types.Interface)
            : Resolved<T>.Keep(factory.GetGrain<T>(key));

    /// <summary>The types of <typeparamref name="T"/>'s grain, once one reference has been made (the same in every cluster of this code).</summary>
    private static class Resolved<T>
    {
        private static volatile Box? _types;

        public static (GrainType Grain, GrainInterfaceType Interface)? Types => _types?.Value;

        public static T Keep(T reference)
        {
            if (reference is GrainReference grain)
            {
                _types = new Box((grain.GrainId.Type, grain.InterfaceType));
            }

            return reference;
        }

        private sealed record Box((GrainType Grain, GrainInterfaceType Interface) Value);
    }
}
