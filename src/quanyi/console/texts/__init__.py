"""Console texts per section (zh-CN and en), registered with `console.i18n.add_messages` on import."""
