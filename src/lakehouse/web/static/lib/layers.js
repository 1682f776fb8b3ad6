// The medallion layers in the order the UI lists them, and the colour of each.

export const LAYERS = ["bronze", "silver", "gold", "system", "realtime"];
export const LAYER_COLORS = {
  bronze: "#b5651d",
  silver: "#7d8a96",
  gold: "#c9a227",
  system: "#6f42c1",
  realtime: "#1f6feb",
};
