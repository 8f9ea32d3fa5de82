"""Control tables, model numbers, baud-rate registers and sign encodings for Feetech and Dynamixel servos.

These are the wire-level facts shared by the bus drivers and the servo emulator; they match LeRobot's
`motors/feetech/tables.py` and `motors/dynamixel/tables.py` so that calibration and register values mean
the same thing in both projects.
"""

from __future__ import annotations

# name -> (address, n_bytes)
ControlTable = dict[str, tuple[int, int]]

# ---------------------------------------------------------------------------------------------- Feetech
FEETECH_DEFAULT_BAUDRATE = 1_000_000
FEETECH_BROADCAST_ID = 0xFE
FEETECH_MAX_ID = 0xFC

STS_SMS_SERIES_CONTROL_TABLE: ControlTable = {
    # EPROM
    "Firmware_Major_Version": (0, 1),
    "Firmware_Minor_Version": (1, 1),
    "Model_Number": (3, 2),
    "ID": (5, 1),
    "Baud_Rate": (6, 1),
    "Return_Delay_Time": (7, 1),
    "Response_Status_Level": (8, 1),
    "Min_Position_Limit": (9, 2),
    "Max_Position_Limit": (11, 2),
    "Max_Temperature_Limit": (13, 1),
    "Max_Voltage_Limit": (14, 1),
    "Min_Voltage_Limit": (15, 1),
    "Max_Torque_Limit": (16, 2),
    "Phase": (18, 1),
    "Unloading_Condition": (19, 1),
    "LED_Alarm_Condition": (20, 1),
    "P_Coefficient": (21, 1),
    "D_Coefficient": (22, 1),
    "I_Coefficient": (23, 1),
    "Minimum_Startup_Force": (24, 2),
    "CW_Dead_Zone": (26, 1),
    "CCW_Dead_Zone": (27, 1),
    "Protection_Current": (28, 2),
    "Angular_Resolution": (30, 1),
    "Homing_Offset": (31, 2),
    "Operating_Mode": (33, 1),
    "Protective_Torque": (34, 1),
    "Protection_Time": (35, 1),
    "Overload_Torque": (36, 1),
    "Velocity_closed_loop_P_proportional_coefficient": (37, 1),
    "Over_Current_Protection_Time": (38, 1),
    "Velocity_closed_loop_I_integral_coefficient": (39, 1),
    # SRAM
    "Torque_Enable": (40, 1),
    "Acceleration": (41, 1),
    "Goal_Position": (42, 2),
    "Goal_Time": (44, 2),
    "Goal_Velocity": (46, 2),
    "Torque_Limit": (48, 2),
    "Lock": (55, 1),
    "Present_Position": (56, 2),
    "Present_Velocity": (58, 2),
    "Present_Load": (60, 2),
    "Present_Voltage": (62, 1),
    "Present_Temperature": (63, 1),
    "Status": (65, 1),
    "Moving": (66, 1),
    "Present_Current": (69, 2),
    "Goal_Position_2": (71, 2),
    # Factory
    "Moving_Velocity": (80, 1),
    "Moving_Velocity_Threshold": (80, 1),
    "DTs": (81, 1),
    "Velocity_Unit_factor": (82, 1),
    "Hts": (83, 1),
    "Maximum_Velocity_Limit": (84, 1),
    "Maximum_Acceleration": (85, 1),
    "Acceleration_Multiplier ": (86, 1),  # the trailing space is LeRobot's key
}

SCS_SERIES_CONTROL_TABLE: ControlTable = {
    "Firmware_Major_Version": (0, 1),
    "Firmware_Minor_Version": (1, 1),
    "Model_Number": (3, 2),
    "ID": (5, 1),
    "Baud_Rate": (6, 1),
    "Return_Delay_Time": (7, 1),
    "Response_Status_Level": (8, 1),
    "Min_Position_Limit": (9, 2),
    "Max_Position_Limit": (11, 2),
    "Max_Temperature_Limit": (13, 1),
    "Max_Voltage_Limit": (14, 1),
    "Min_Voltage_Limit": (15, 1),
    "Max_Torque_Limit": (16, 2),
    "Phase": (18, 1),
    "Unloading_Condition": (19, 1),
    "LED_Alarm_Condition": (20, 1),
    "P_Coefficient": (21, 1),
    "D_Coefficient": (22, 1),
    "I_Coefficient": (23, 1),
    "Minimum_Startup_Force": (24, 2),
    "CW_Dead_Zone": (26, 1),
    "CCW_Dead_Zone": (27, 1),
    "Protective_Torque": (37, 1),
    "Protection_Time": (38, 1),
    "Torque_Enable": (40, 1),
    "Acceleration": (41, 1),
    "Goal_Position": (42, 2),
    "Running_Time": (44, 2),
    "Goal_Velocity": (46, 2),
    "Lock": (48, 1),
    "Present_Position": (56, 2),
    "Present_Velocity": (58, 2),
    "Present_Load": (60, 2),
    "Present_Voltage": (62, 1),
    "Present_Temperature": (63, 1),
    "Sync_Write_Flag": (64, 1),
    "Status": (65, 1),
    "Moving": (66, 1),
}

# First RAM address: writes below it land in EEPROM and need Lock == 0.
FEETECH_EEPROM_END = 40

FEETECH_BAUDRATE_TABLE: dict[int, int] = {
    1_000_000: 0,
    500_000: 1,
    250_000: 2,
    128_000: 3,
    115_200: 4,
    57_600: 5,
    38_400: 6,
    19_200: 7,
}

FEETECH_SCAN_BAUDRATES = [4_800, 9_600, 14_400, 19_200, 38_400, 57_600, 115_200, 128_000, 250_000, 500_000, 1_000_000]

FEETECH_MODEL_NUMBERS: dict[str, int] = {
    "sts3215": 777,
    "sts3250": 2825,
    "sm8512bl": 11272,
    "scs0009": 1284,
}

FEETECH_MODEL_PROTOCOL: dict[str, int] = {
    "sts3215": 0,
    "sts3250": 0,
    "sm8512bl": 0,
    "scs0009": 1,
}

FEETECH_MODEL_CONTROL_TABLE: dict[str, ControlTable] = {
    "sts3215": STS_SMS_SERIES_CONTROL_TABLE,
    "sts3250": STS_SMS_SERIES_CONTROL_TABLE,
    "sm8512bl": STS_SMS_SERIES_CONTROL_TABLE,
    "scs0009": SCS_SERIES_CONTROL_TABLE,
}

FEETECH_MODEL_RESOLUTION: dict[str, int] = {
    "sts3215": 4096,
    "sts3250": 4096,
    "sm8512bl": 4096,
    "scs0009": 1024,
}

# Sign-magnitude registers: name -> index of the sign bit (protocol-0 models only).
STS_SMS_SERIES_ENCODINGS: dict[str, int] = {
    "Homing_Offset": 11,
    "Goal_Position": 15,
    "Goal_Velocity": 15,
    "Goal_Speed": 15,
    "Present_Position": 15,
    "Present_Velocity": 15,
    "Present_Speed": 15,
    "Present_Load": 10,
}

FEETECH_MODEL_ENCODINGS: dict[str, dict[str, int]] = {
    "sts3215": STS_SMS_SERIES_ENCODINGS,
    "sts3250": STS_SMS_SERIES_ENCODINGS,
    "sm8512bl": STS_SMS_SERIES_ENCODINGS,
    "scs0009": {},
}

FEETECH_FIRMWARE = (3, 10)  # major, minor as the emulator reports them

# -------------------------------------------------------------------------------------------- Dynamixel
DYNAMIXEL_DEFAULT_BAUDRATE = 1_000_000
DYNAMIXEL_BROADCAST_ID = 0xFE

X_SERIES_CONTROL_TABLE: ControlTable = {
    # EEPROM
    "Model_Number": (0, 2),
    "Model_Information": (2, 4),
    "Firmware_Version": (6, 1),
    "ID": (7, 1),
    "Baud_Rate": (8, 1),
    "Return_Delay_Time": (9, 1),
    "Drive_Mode": (10, 1),
    "Operating_Mode": (11, 1),
    "Secondary_ID": (12, 1),
    "Protocol_Type": (13, 1),
    "Homing_Offset": (20, 4),
    "Moving_Threshold": (24, 4),
    "Temperature_Limit": (31, 1),
    "Max_Voltage_Limit": (32, 2),
    "Min_Voltage_Limit": (34, 2),
    "PWM_Limit": (36, 2),
    "Current_Limit": (38, 2),
    "Acceleration_Limit": (40, 4),
    "Velocity_Limit": (44, 4),
    "Max_Position_Limit": (48, 4),
    "Min_Position_Limit": (52, 4),
    "Shutdown": (63, 1),
    # RAM
    "Torque_Enable": (64, 1),
    "LED": (65, 1),
    "Status_Return_Level": (68, 1),
    "Registered_Instruction": (69, 1),
    "Hardware_Error_Status": (70, 1),
    "Velocity_I_Gain": (76, 2),
    "Velocity_P_Gain": (78, 2),
    "Position_D_Gain": (80, 2),
    "Position_I_Gain": (82, 2),
    "Position_P_Gain": (84, 2),
    "Feedforward_2nd_Gain": (88, 2),
    "Feedforward_1st_Gain": (90, 2),
    "Bus_Watchdog": (98, 1),
    "Goal_PWM": (100, 2),
    "Goal_Current": (102, 2),
    "Goal_Velocity": (104, 4),
    "Profile_Acceleration": (108, 4),
    "Profile_Velocity": (112, 4),
    "Goal_Position": (116, 4),
    "Realtime_Tick": (120, 2),
    "Moving": (122, 1),
    "Moving_Status": (123, 1),
    "Present_PWM": (124, 2),
    "Present_Current": (126, 2),
    "Present_Velocity": (128, 4),
    "Present_Position": (132, 4),
    "Velocity_Trajectory": (136, 4),
    "Position_Trajectory": (140, 4),
    "Present_Input_Voltage": (144, 2),
    "Present_Temperature": (146, 1),
}

# First RAM address: EEPROM writes are refused while Torque_Enable == 1 (the X-series rule).
DYNAMIXEL_EEPROM_END = 64

DYNAMIXEL_BAUDRATE_TABLE: dict[int, int] = {
    9_600: 0,
    57_600: 1,
    115_200: 2,
    1_000_000: 3,
    2_000_000: 4,
    3_000_000: 5,
    4_000_000: 6,
}

DYNAMIXEL_SCAN_BAUDRATES = [
    9_600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 500_000, 576_000,
    921_600, 1_000_000, 1_152_000, 2_000_000, 2_500_000, 3_000_000, 3_500_000, 4_000_000,
]

DYNAMIXEL_MODEL_NUMBERS: dict[str, int] = {
    "xl330-m077": 1190,
    "xl330-m288": 1200,
    "xl430-w250": 1060,
    "xm430-w350": 1020,
    "xm540-w270": 1120,
    "xc430-w150": 1070,
    "xh540-w150": 1110,
    "xc330-t288": 1220,
    "xc330-t181": 1210,
}

DYNAMIXEL_RESOLUTION = 4096

# Two's-complement registers (width comes from the control table).
DYNAMIXEL_SIGNED_REGISTERS = frozenset(
    {
        "Homing_Offset",
        "Goal_PWM",
        "Goal_Current",
        "Goal_Velocity",
        "Goal_Position",
        "Present_Position",
        "Present_PWM",
        "Present_Current",
        "Present_Velocity",
    }
)

DYNAMIXEL_FIRMWARE = 52

# Register names LeRobot normalizes (read/write in user units when a calibration is loaded).
NORMALIZED_DATA = ("Goal_Position", "Present_Position")
