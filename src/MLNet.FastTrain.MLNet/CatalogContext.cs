using System.Reflection;
using Microsoft.ML.Runtime;

namespace MLNet.FastTrain.MLNet;

/// <summary>
/// The environment an ML.NET catalog belongs to. ML.NET's own extension packages read it through an internal
/// interface (<c>IInternalCatalog.Environment</c>); a third-party package reaches the same property by reflection,
/// so that its messages go to the user's <c>MLContext.Log</c> like ML.NET's own.
/// </summary>
internal static class CatalogContext
{
    private const string PropertyName = "Microsoft.ML.Data.IInternalCatalog.Environment";

    public static IHostEnvironment Of(object catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        for (var type = catalog.GetType(); type is not null; type = type.BaseType)
        {
            var property = type.GetProperty(PropertyName, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.DeclaredOnly);
            if (property?.GetValue(catalog) is IHostEnvironment env) return env;
        }
        throw new NotSupportedException($"The ML.NET catalog {catalog.GetType().Name} exposes no environment; this package was built against Microsoft.ML 5.0.1.");
    }

    /// <summary>
    /// <c>MLContext.GpuDeviceId</c> and <c>MLContext.FallbackToCpu</c> as the environment carries them (ML.NET keeps
    /// them on an internal interface of its environments); null and false where it carries none.
    /// </summary>
    public static (int? GpuDeviceId, bool FallbackToCpu) GpuSettings(IHostEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (environment is Microsoft.ML.MLContext ml) return (ml.GpuDeviceId, ml.FallbackToCpu);
        int? gpu = null;
        bool fallback = false;
        foreach (var type in environment.GetType().GetInterfaces().Prepend(environment.GetType()))
        {
            foreach (var property in type.GetProperties(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            {
                if (property.Name.EndsWith("GpuDeviceId", StringComparison.Ordinal) && property.GetValue(environment) is int id) gpu = id;
                if (property.Name.EndsWith("FallbackToCpu", StringComparison.Ordinal) && property.GetValue(environment) is bool f) fallback = f;
            }
        }
        return (gpu, fallback);
    }
}
